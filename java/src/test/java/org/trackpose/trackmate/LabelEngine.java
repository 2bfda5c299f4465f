package org.trackpose.trackmate;

import ij.ImagePlus;
import ij.ImageStack;
import ij.io.FileSaver;
import ij.io.Opener;
import ij.process.FloatProcessor;
import ij.process.ImageProcessor;
import ij.process.ShortProcessor;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.trackpose.bridge.EngineCommand;
import org.trackpose.bridge.Json;

/**
 * A stand-in engine, run as a real child process: {@code LabelEngine SCENARIO job DIR}. Scenario "labels" reads the
 * input's target channel as a label image (pixel value = label id) and answers with it, as the real engine would for
 * a perfect segmentation: labels.tif (16-bit, or 32-bit float past 65,535 labels, as the engine writes it), and
 * shapes.json whose 2D outlines are the labels' bounding boxes (tests draw rectangles) and whose quality is
 * label / 100. "error" fails like an engine that cannot load its model; "hang" logs that it started and then sleeps,
 * for cancel tests.
 */
public final class LabelEngine {

    private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

    public static void main(String[] args) throws Exception {
        String scenario = args[0];
        Path dir = Paths.get(args[2]);
        switch (scenario) {
            case "labels":
                int n = answer(dir);
                event("done", "objects", n);
                System.exit(0);
                break;
            case "error":
                event("error", "message", "cannot load model 'broken': not a cellpose weight file", "kind", "model");
                System.err.println("Traceback: the fake engine failed on purpose");
                System.exit(2);
                break;
            case "hang":
                event("log", "level", "info", "message", "started");
                Thread.sleep(60_000); // bounded, so that a failing test leaves nothing running for long
                System.exit(0);
                break;
            default:
                throw new IllegalArgumentException(scenario);
        }
    }

    private static void event(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("event", kv[0]);
        for (int i = 1; i + 1 < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        OUT.println(Json.write(m));
    }

    /** Per-label voxel statistics. */
    private static final class Stats {
        long n;
        double sx;
        double sy;
        double sz;
        int x0 = Integer.MAX_VALUE;
        int y0 = Integer.MAX_VALUE;
        int x1 = -1;
        int y1 = -1;
    }

    private static int answer(Path dir) throws Exception {
        ImagePlus input = new Opener().openImage(dir.resolve("input.tif").toString());
        Map<String, Object> job = Json.parseObject(new String(Files.readAllBytes(dir.resolve("job.json")),
                StandardCharsets.UTF_8));
        List<?> frames = (List<?>) job.get("frames");
        @SuppressWarnings("unchecked")
        Map<String, Object> settings = (Map<String, Object>) job.get("settings");
        int channel = Math.max(1, ((Number) ((List<?>) settings.get("channels")).get(0)).intValue());
        int nZ = input.getNSlices();
        int w = input.getWidth();
        int h = input.getHeight();
        List<int[]> planes = new ArrayList<>();
        int maxLabel = 0;
        List<Object> frameEntries = new ArrayList<>();
        int count = 0;
        for (int t = 0; t < frames.size(); t++) {
            TreeMap<Integer, Stats> stats = new TreeMap<>();
            for (int z = 0; z < nZ; z++) {
                ImageProcessor ip = input.getStack().getProcessor(input.getStackIndex(channel, z + 1, t + 1));
                int[] out = new int[w * h];
                for (int y = 0; y < h; y++) {
                    for (int x = 0; x < w; x++) {
                        int label = (int) ip.getf(x, y);
                        out[y * w + x] = label;
                        maxLabel = Math.max(maxLabel, label);
                        if (label == 0) {
                            continue;
                        }
                        Stats s = stats.computeIfAbsent(label, k -> new Stats());
                        s.n++;
                        s.sx += x + 0.5;
                        s.sy += y + 0.5;
                        s.sz += z + 0.5;
                        s.x0 = Math.min(s.x0, x);
                        s.y0 = Math.min(s.y0, y);
                        s.x1 = Math.max(s.x1, x + 1);
                        s.y1 = Math.max(s.y1, y + 1);
                    }
                }
                planes.add(out);
            }
            List<Object> objects = new ArrayList<>();
            for (Map.Entry<Integer, Stats> e : stats.entrySet()) {
                Stats s = e.getValue();
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("label", e.getKey());
                o.put("quality", e.getKey() / 100.0);
                if (nZ == 1) {
                    o.put("centroid", Arrays.asList(s.sx / s.n, s.sy / s.n));
                    o.put("area", s.n);
                    o.put("polygon", Arrays.asList(Arrays.asList(s.x0, s.y0), Arrays.asList(s.x0, s.y1),
                            Arrays.asList(s.x1, s.y1), Arrays.asList(s.x1, s.y0)));
                } else {
                    o.put("centroid", Arrays.asList(s.sx / s.n, s.sy / s.n, s.sz / s.n));
                    o.put("volume", s.n);
                }
                objects.add(o);
            }
            count += objects.size();
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("frame", frames.get(t));
            entry.put("objects", objects);
            frameEntries.add(entry);
            event("progress", "done", t + 1, "total", frames.size(), "frame", frames.get(t));
        }
        // as the real engine writes them: 16-bit, or 32-bit float when an id does not fit in 16 bits
        ImageStack labels = new ImageStack(w, h);
        for (int[] plane : planes) {
            ImageProcessor ip = maxLabel > 65_535 ? new FloatProcessor(w, h) : new ShortProcessor(w, h);
            for (int i = 0; i < plane.length; i++) {
                ip.setf(i, plane[i]);
            }
            labels.addSlice(ip);
        }
        ImagePlus out = new ImagePlus("labels", labels);
        out.setDimensions(1, nZ, frames.size());
        if (out.getStackSize() > 1) {
            new FileSaver(out).saveAsTiffStack(dir.resolve("labels.tif").toString());
        } else {
            new FileSaver(out).saveAsTiff(dir.resolve("labels.tif").toString());
        }
        Map<String, Object> shapes = new LinkedHashMap<>();
        shapes.put("version", 1);
        shapes.put("ndim", nZ == 1 ? 2 : 3);
        shapes.put("calibration", job.get("calibration"));
        shapes.put("frames", frameEntries);
        Files.write(dir.resolve("shapes.json"), Json.write(shapes).getBytes(StandardCharsets.UTF_8));
        return count;
    }

    // ------------------------------------------------------------------ how tests start it

    /** An {@link EngineCommand} running this class in a new JVM with the test classpath. */
    static EngineCommand command(String scenario) {
        return new EngineCommand() {
            @Override
            public List<String> jobCommand(Path jobDir) {
                return argv(scenario, "job", jobDir.toString());
            }

            @Override
            public List<String> serveCommand() {
                throw new UnsupportedOperationException("the label engine has no worker mode");
            }

            @Override
            public String describe() {
                return "label engine (" + scenario + ")";
            }
        };
    }

    private static List<String> argv(String... args) {
        String javaExe = ProcessHandle.current().info().command()
                .orElse(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        List<String> parts = new ArrayList<>();
        for (Class<?> c : Arrays.asList(LabelEngine.class, Json.class, com.google.gson.stream.JsonReader.class, ImagePlus.class)) {
            try {
                String p = Paths.get(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
                if (!parts.contains(p)) {
                    parts.add(p);
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        List<String> argv = new ArrayList<>(Arrays.asList(javaExe, "-Xshare:auto", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true", "-cp", String.join(java.io.File.pathSeparator, parts),
                LabelEngine.class.getName()));
        argv.addAll(Arrays.asList(args));
        return argv;
    }
}
