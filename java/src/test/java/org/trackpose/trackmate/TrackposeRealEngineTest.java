package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotCollection;
import fiji.plugin.trackmate.SpotRoi;
import fiji.plugin.trackmate.detection.SpotGlobalDetector;
import ij.ImagePlus;
import ij.ImageStack;
import ij.io.Opener;
import ij.process.ImageProcessor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import net.imagej.ImgPlus;
import net.imglib2.type.numeric.real.FloatType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.trackpose.bridge.DetectorKeys;
import org.trackpose.bridge.PythonEnvironment;

/**
 * The TrackMate detector with the real engine behind the bridge. Runs only when TRACKPOSE_PYTHON names a python with
 * trackpose installed (tests/run sets it); skipped otherwise. As in the bridge's RealEngineTest, the model is a random
 * CPnet saved through that python (nothing is downloaded) and the image a synthetic nuclei image; the reference is the
 * engine's own label image, kept in the job folder: every label must come back as one spot at its centroid, in the
 * right frame, with the label's size, and (2D) an outline around the label's pixels.
 */
class TrackposeRealEngineTest {

    @TempDir
    static Path shared;

    @TempDir
    Path tmp;

    private static String python;
    private static Path model;
    private static ImagePlus nuclei;

    /** The bridge's recipe (after tests/conftest.py): a random CPnet whose flows form basins, and an image. */
    private static final String MAKE_MODEL_AND_IMAGE = org.trackpose.bridge.RealEngineTest.MAKE_MODEL_AND_IMAGE;

    @BeforeEach
    void needsTheEngine() throws Exception {
        String p = System.getenv("TRACKPOSE_PYTHON");
        assumeTrue(p != null && !p.trim().isEmpty(), "TRACKPOSE_PYTHON not set");
        if (python == null) {
            python = p.trim();
            Path modelFile = shared.resolve("random_cp");
            Path imageFile = shared.resolve("nuclei.tif");
            List<String> argv = PythonEnvironment.python(python).pythonCommand("-c", MAKE_MODEL_AND_IMAGE,
                    modelFile.toString(), imageFile.toString());
            Process proc = new ProcessBuilder(argv).redirectErrorStream(true).start();
            String out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(proc.waitFor(120, TimeUnit.SECONDS), "making the test model and image timed out");
            assertEquals(0, proc.exitValue(), "making the test model and image failed:\n" + out);
            model = modelFile;
            nuclei = new Opener().openImage(imageFile.toString());
            assertNotNull(nuclei);
        }
    }

    @AfterAll
    static void stopPreviewWorker() {
        EngineWorkers.closeAll();
    }

    private Map<String, Object> settings(boolean keep) {
        Map<String, Object> s = DetectorKeys.defaults();
        s.put(KEY_PYTHON_ENV_KIND, ENV_PYTHON);
        s.put(KEY_PYTHON_ENV_PATH, python);
        s.put(KEY_PRETRAINED_OR_CUSTOM, CUSTOM);
        s.put(KEY_CELLPOSE_MODEL_FILEPATH, model.toString());
        s.put(KEY_CELL_DIAMETER, 12.0); // micron: 24 pixels of 0.5 micron
        s.put(KEY_USE_GPU, false);
        s.put(KEY_SIMPLIFY_CONTOURS, false); // pixel-exact outlines, comparable with the labels
        s.put(KEY_FLOW_THRESHOLD, 0.0); // a random network's flows fail the flow check
        s.put(KEY_STITCH_MIN_MEAN_CELLPROB, 0.0); // and its logits stay near 0: keep its faint stitched objects
        s.put(KEY_KEEP_TEMP_FOLDER, keep);
        return s;
    }

    /** A hyperstack of {@code frames} x {@code slices} copies of the nuclei image, the copies shifted by (dx, dy) * t. */
    private static ImagePlus copies(int slices, int frames, int dx, int dy) {
        ImageStack stack = new ImageStack(nuclei.getWidth(), nuclei.getHeight());
        for (int t = 0; t < frames; t++) {
            for (int z = 0; z < slices; z++) {
                ImageProcessor ip = nuclei.getProcessor().duplicate();
                ip.translate(dx * t, dy * t);
                stack.addSlice(ip);
            }
        }
        ImagePlus imp = new ImagePlus("nuclei", stack);
        imp.setDimensions(1, slices, frames);
        imp.getCalibration().pixelWidth = 0.5;
        imp.getCalibration().pixelHeight = 0.5;
        imp.getCalibration().pixelDepth = 1.0;
        imp.getCalibration().setUnit("micron");
        return imp;
    }

    /** Per-label statistics of one frame of the kept labels.tif (crop coordinates). */
    private static final class Label {
        long n;
        double sx;
        double sy;
        double sz;
        int x0 = Integer.MAX_VALUE;
        int y0 = Integer.MAX_VALUE;
        int x1 = -1;
        int y1 = -1;
    }

    private TreeMap<Integer, Label> labelsOfFrame(ImagePlus labels, int t, int nZ) {
        TreeMap<Integer, Label> m = new TreeMap<>();
        for (int z = 0; z < nZ; z++) {
            ImageProcessor ip = labels.getStack().getProcessor(t * nZ + z + 1);
            for (int y = 0; y < ip.getHeight(); y++) {
                for (int x = 0; x < ip.getWidth(); x++) {
                    int id = (int) ip.getf(x, y);
                    if (id == 0) {
                        continue;
                    }
                    Label l = m.computeIfAbsent(id, k -> new Label());
                    l.n++;
                    l.sx += x;
                    l.sy += y;
                    l.sz += z;
                    l.x0 = Math.min(l.x0, x);
                    l.y0 = Math.min(l.y0, y);
                    l.x1 = Math.max(l.x1, x + 1);
                    l.y1 = Math.max(l.y1, y + 1);
                }
            }
        }
        return m;
    }

    private ImagePlus keptLabels() throws Exception {
        List<Path> jobs;
        try (Stream<Path> s = Files.list(tmp)) {
            jobs = s.filter(p -> p.getFileName().toString().startsWith("trackpose-job-")).collect(Collectors.toList());
        }
        assertEquals(1, jobs.size(), "one kept job folder: " + jobs);
        ImagePlus labels = new Opener().openImage(jobs.get(0).resolve("labels.tif").toString());
        assertNotNull(labels);
        return labels;
    }

    /** The spot at exactly this position, if any. */
    private static Spot spotAt(SpotCollection spots, int frame, double x, double y, double z) {
        for (Spot s : spots.iterable(frame, false)) {
            if (Math.abs(s.getFeature(Spot.POSITION_X) - x) < 1e-6 && Math.abs(s.getFeature(Spot.POSITION_Y) - y) < 1e-6
                    && Math.abs(s.getFeature(Spot.POSITION_Z) - z) < 1e-6) {
                return s;
            }
        }
        return null;
    }

    @Test
    void a2DMovieInARoiGivesTheEnginesObjectsAsSpotsWithOutlines() throws Exception {
        ImagePlus movie = copies(1, 2, 6, 4);
        ImgPlus<FloatType> img = TestImages.imgPlus(movie);
        int ox = 8;
        int oy = 12;
        RecordingLogger log = new RecordingLogger();
        SpotGlobalDetector<FloatType> d = new TrackposeDetectorFactory<FloatType>().tempRoot(tmp)
                .getDetector(img, settings(true), TestImages.interval(img, ox, oy, 231, 243, 0, 0, 0, 1));
        d.setLogger(log);
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertTrue(d.process(), d.getErrorMessage() + "\n" + log.lines());
        SpotCollection spots = d.getResult();
        ImagePlus labels = keptLabels();
        assertEquals(224, labels.getWidth());
        assertEquals(232, labels.getHeight());
        double pw = 0.5;
        for (int t = 0; t < 2; t++) {
            TreeMap<Integer, Label> truth = labelsOfFrame(labels, t, 1);
            assertTrue(truth.size() > 3, "the test model finds objects: " + truth.size());
            assertEquals(truth.size(), spots.getNSpots(t, false), "one spot per label in frame " + t);
            int exactOutlines = 0;
            for (Map.Entry<Integer, Label> e : truth.entrySet()) {
                Label l = e.getValue();
                double x = (l.sx / l.n + ox) * pw;
                double y = (l.sy / l.n + oy) * pw;
                Spot s = spotAt(spots, t, x, y, 0);
                assertNotNull(s, "label " + e.getKey() + " of frame " + t + " has a spot at its centroid");
                assertEquals(t, s.getFeature(Spot.FRAME).intValue());
                assertEquals(Math.sqrt(l.n * pw * pw / Math.PI), s.getFeature(Spot.RADIUS), 1e-9);
                double q = s.getFeature(Spot.QUALITY);
                assertTrue(q >= 0 && q <= 1, "quality is a mean probability: " + q);
                SpotRoi roi = s.getRoi();
                assertNotNull(roi);
                assertTrue(roi.x.length >= 4);
                for (int i = 0; i < roi.x.length; i++) {
                    // outline vertices lie on the label's pixel edges: within its bounding box
                    double vx = roi.x[i] + x;
                    double vy = roi.y[i] + y;
                    assertTrue(vx >= (l.x0 + ox - 0.5) * pw - 1e-9 && vx <= (l.x1 + ox - 0.5) * pw + 1e-9,
                            "label " + e.getKey() + ": vertex x " + vx);
                    assertTrue(vy >= (l.y0 + oy - 0.5) * pw - 1e-9 && vy <= (l.y1 + oy - 0.5) * pw + 1e-9,
                            "label " + e.getKey() + ": vertex y " + vy);
                }
                if (Math.abs(TestImages.polygonArea(roi.x, roi.y) - l.n * pw * pw) < 1e-6) {
                    exactOutlines++;
                }
            }
            assertTrue(exactOutlines >= 0.8 * truth.size(), exactOutlines + " of " + truth.size()
                    + " outlines enclose exactly their label's area");
        }
        assertTrue(log.lines().contains("STATUS trackpose: 2 of 2 frames done"), log.lines().toString());
    }

    @Test
    void aZStackGivesOneSpotPerObjectAtItsVoxelCentroidThroughThePreviewWorker() throws Exception {
        ImagePlus stack = copies(3, 1, 0, 0);
        ImgPlus<FloatType> img = TestImages.imgPlus(stack);
        Map<String, Object> s = settings(true);
        s.put(KEY_MODE_3D, true);
        s.put(KEY_DO2DZ, true); // 2D per plane + stitching: fast, and identical planes stitch into columns
        int ox = 20;
        int oy = 28;
        SpotGlobalDetector<FloatType> d = new TrackposeDetectorFactory<FloatType>().tempRoot(tmp).forPreview()
                .getDetector(img, s, TestImages.interval(img, ox, oy, 235, 243, 1, 2, 0, 0));
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertTrue(d.process(), d.getErrorMessage());
        SpotCollection spots = d.getResult();
        ImagePlus labels = keptLabels();
        assertEquals(2, labels.getStackSize(), "planes 1..2 were sent");
        TreeMap<Integer, Label> truth = labelsOfFrame(labels, 0, 2);
        assertTrue(truth.size() > 1, "the test model finds objects: " + truth.size());
        assertEquals(truth.size(), spots.getNSpots(0, false));
        double pw = 0.5;
        double pd = 1.0;
        for (Map.Entry<Integer, Label> e : truth.entrySet()) {
            Label l = e.getValue();
            Spot spot = spotAt(spots, 0, (l.sx / l.n + ox) * pw, (l.sy / l.n + oy) * pw, (l.sz / l.n + 1) * pd);
            assertNotNull(spot, "label " + e.getKey() + " has a spot at its voxel centroid (Z crop added)");
            assertEquals(Math.cbrt(3 * l.n * pw * pw * pd / (4 * Math.PI)), spot.getFeature(Spot.RADIUS), 1e-9);
            assertNull(spot.getRoi());
        }
    }

    @Test
    void cancelStopsTheEngine() throws Exception {
        ImgPlus<FloatType> img = TestImages.imgPlus(copies(1, 4, 3, 0));
        RecordingLogger log = new RecordingLogger();
        SpotGlobalDetector<FloatType> d = new TrackposeDetectorFactory<FloatType>().tempRoot(tmp)
                .getDetector(img, settings(false), TestImages.whole(img));
        d.setLogger(log);
        assertTrue(d.checkInput(), d.getErrorMessage());
        CompletableFuture<Boolean> run = CompletableFuture.supplyAsync(d::process);
        Optional<ProcessHandle> engine = Optional.empty();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!engine.isPresent() && System.nanoTime() < deadline && !run.isDone()) {
            engine = ProcessHandle.current().descendants().filter(p -> {
                String cmd = p.info().commandLine().orElse("");
                return cmd.contains("trackpose") && cmd.contains(" job ");
            }).findFirst();
            Thread.sleep(50);
        }
        assertTrue(engine.isPresent(), "the engine started: " + log.lines());
        Thread.sleep(1000); // let it get into its work (python imports, model loading)
        List<ProcessHandle> tree = new ArrayList<>();
        tree.add(engine.get());
        engine.get().descendants().forEach(tree::add);
        ((org.scijava.Cancelable) d).cancel("test");
        assertFalse(run.get(30, TimeUnit.SECONDS));
        assertNull(d.getResult());
        assertTrue(d.getErrorMessage().contains("cancelled: test"), d.getErrorMessage());
        for (ProcessHandle h : tree) {
            h.onExit().get(10, TimeUnit.SECONDS);
            assertFalse(h.isAlive(), "engine process " + h.pid() + " stopped");
        }
        try (Stream<Path> left = Files.list(tmp)) {
            assertEquals(0, left.count(), "the job folder is removed");
        }
    }
}
