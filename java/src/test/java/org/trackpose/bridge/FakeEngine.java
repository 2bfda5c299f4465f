package org.trackpose.bridge;

import ij.ImagePlus;
import ij.ImageStack;
import ij.io.Opener;
import ij.process.ShortProcessor;
import java.io.BufferedReader;
import java.io.InputStreamReader;
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

/**
 * A stand-in for {@code trackpose job DIR} / {@code trackpose serve}, run as a real child process by the tests:
 * {@code FakeEngine SCENARIO job DIR} or {@code FakeEngine SCENARIO serve}. In serve mode a file named
 * {@code scenario} in the job folder overrides the scenario for that request.
 *
 * <p>The "ok" scenario writes real outputs: in every frame, label 1 is the rectangle x in [2, 6), y in [3, 8)
 * (20 pixels); odd frames (by position) also have label 2, the single pixel (9, 1).
 */
public final class FakeEngine {

    private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

    public static void main(String[] args) throws Exception {
        String scenario = args[0];
        String mode = args[1];
        if (mode.equals("sleep")) {
            Thread.sleep(120_000); // bounded, so that a failing test leaves nothing running for long
            return;
        }
        if (mode.equals("job")) {
            int code = runJob(scenario, Paths.get(args[2]), false);
            System.exit(code);
        }
        if (mode.equals("serve")) {
            event("log", "level", "info", "message", "worker ready");
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                Map<String, Object> request = Json.parseObject(line);
                if ("quit".equals(request.get("cmd"))) {
                    break;
                }
                Path dir = Paths.get((String) request.get("job"));
                String s = scenario;
                Path override = dir.resolve("scenario");
                if (Files.exists(override)) {
                    s = new String(Files.readAllBytes(override), StandardCharsets.UTF_8).trim();
                }
                runJob(s, dir, true);
            }
            System.exit(0);
        }
        throw new IllegalArgumentException("mode " + mode);
    }

    static void event(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("event", kv[0]);
        for (int i = 1; i + 1 < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        OUT.println(Json.write(m));
        OUT.flush();
    }

    /** Returns the exit code a one-shot job would have; in serve mode only "die" exits. */
    static int runJob(String scenario, Path dir, boolean serving) throws Exception {
        switch (scenario) {
            case "ok":
            case "ok-wrong-count":
            case "no-done": {
                OUT.println("a stray line printed by some library");
                event("log", "level", "info", "message", "loading model");
                event("log", "level", "warning", "message", "no GPU, running on CPU");
                int objects = writeOutputs(dir);
                if (scenario.equals("no-done")) {
                    return 0;
                }
                Map<String, Object> job = Json.parseObject(read(dir.resolve("job.json")));
                event("done", "objects", objects + (scenario.equals("ok-wrong-count") ? 1 : 0), "frames",
                        ((List<?>) job.get("frames")).size());
                return 0;
            }
            case "fail":
                System.err.println("Traceback (most recent call last):");
                System.err.println("  File \"engine.py\", line 12, in run");
                System.err.println("RuntimeError: CUDA out of memory");
                return 3;
            case "error-event":
                event("progress", "done", 1, "total", 2, "frame", 0);
                event("error", "message", "frame 1: channel 3 does not exist (the image has 2 channels)", "kind",
                        "input");
                System.err.println("InputError: channel 3 does not exist");
                return 2;
            case "disk-full":
                // what `trackpose job` prints when it cannot write its outputs (python/trackpose/job.py)
                event("progress", "done", 1, "total", 1, "frame", 0);
                event("error", "message", "disk full / file too large at " + dir.resolve("labels.tif")
                        + " (No space left on device; 0 MB free there): free space or choose another temporary "
                        + "folder; no results were kept", "kind", "disk");
                return 1;
            case "error-exit0":
                event("error", "message", "model file is corrupt", "kind", "model");
                return 0;
            case "no-labels":
                event("done", "objects", 3, "frames", 1);
                return 0;
            case "spam-stderr":
                for (int i = 0; i < 20000; i++) {
                    System.err.println("stderr line " + i + " with some padding to make it longer");
                }
                return 1;
            case "hang": {
                Process child = new ProcessBuilder(javaCommand("sleep", "sleep")).inheritIO().start();
                event("log", "level", "info", "message", "pids " + ProcessHandle.current().pid() + " "
                        + child.pid());
                Thread.sleep(120_000); // bounded, so that a failing test leaves nothing running for long
                return 0;
            }
            case "die":
                System.err.println("worker crashed: segmentation fault");
                System.err.flush();
                System.exit(5);
                return 5;
            default:
                throw new IllegalArgumentException("unknown scenario " + scenario);
        }
    }

    static String read(Path p) throws Exception {
        return new String(Files.readAllBytes(p), StandardCharsets.UTF_8);
    }

    private static int writeOutputs(Path dir) throws Exception {
        ImagePlus input = new Opener().openImage(dir.resolve("input.tif").toString());
        Map<String, Object> job = Json.parseObject(read(dir.resolve("job.json")));
        List<?> frames = (List<?>) job.get("frames");
        int w = input.getWidth();
        int h = input.getHeight();
        ImageStack stack = new ImageStack(w, h);
        List<Object> frameEntries = new ArrayList<>();
        int objects = 0;
        for (int t = 0; t < frames.size(); t++) {
            ShortProcessor sp = new ShortProcessor(w, h);
            for (int y = 3; y < 8; y++) {
                for (int x = 2; x < 6; x++) {
                    sp.set(x, y, 1);
                }
            }
            List<Object> objs = new ArrayList<>();
            objs.add(object(1, Arrays.asList(Arrays.asList(2, 3), Arrays.asList(2, 8), Arrays.asList(6, 8),
                    Arrays.asList(6, 3)), 0.9));
            if (t % 2 == 1) {
                sp.set(9, 1, 2);
                objs.add(object(2, Arrays.asList(Arrays.asList(9, 1), Arrays.asList(9, 2), Arrays.asList(10, 2),
                        Arrays.asList(10, 1)), 0.6));
            }
            objects += objs.size();
            stack.addSlice(sp);
            Map<String, Object> entry = new LinkedHashMap<>();
            entry.put("frame", frames.get(t));
            entry.put("objects", objs);
            frameEntries.add(entry);
            event("progress", "done", t + 1, "total", frames.size(), "frame", frames.get(t));
        }
        ImagePlus labels = new ImagePlus("labels", stack);
        labels.setDimensions(1, 1, frames.size());
        JobFolder.writeTiff(labels, dir.resolve("labels.tif"));
        Map<String, Object> shapes = new LinkedHashMap<>();
        shapes.put("version", 1);
        shapes.put("ndim", 2);
        shapes.put("calibration", job.get("calibration"));
        shapes.put("frames", frameEntries);
        Files.write(dir.resolve("shapes.json"), Json.write(shapes).getBytes(StandardCharsets.UTF_8));
        return objects;
    }

    private static Map<String, Object> object(int label, List<?> polygon, double quality) {
        Map<String, Object> o = new LinkedHashMap<>();
        o.put("label", label);
        o.put("polygon", polygon);
        o.put("quality", quality);
        return o;
    }

    // ------------------------------------------------------------------ how tests start it

    /** argv starting this class in a new JVM with the test classpath. */
    static List<String> javaCommand(String scenario, String mode, String... more) {
        String java = ProcessHandle.current().info().command()
                .orElse(Paths.get(System.getProperty("java.home"), "bin", "java").toString());
        List<String> argv = new ArrayList<>(Arrays.asList(java, "-Xshare:auto", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true", "-cp", classpath(), FakeEngine.class.getName(), scenario, mode));
        argv.addAll(Arrays.asList(more));
        return argv;
    }

    private static String classpath() {
        List<String> parts = new ArrayList<>();
        for (Class<?> c : Arrays.asList(FakeEngine.class, Json.class, com.google.gson.stream.JsonReader.class, ImagePlus.class)) {
            try {
                String p = Paths.get(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
                if (!parts.contains(p)) {
                    parts.add(p);
                }
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        return String.join(java.io.File.pathSeparator, parts);
    }

    /** An {@link EngineCommand} that runs this fake with a scenario. */
    static EngineCommand command(String scenario) {
        return new EngineCommand() {
            @Override
            public List<String> jobCommand(Path jobDir) {
                return javaCommand(scenario, "job", jobDir.toString());
            }

            @Override
            public List<String> serveCommand() {
                return javaCommand(scenario, "serve");
            }

            @Override
            public String describe() {
                return "fake engine (" + scenario + ")";
            }
        };
    }
}
