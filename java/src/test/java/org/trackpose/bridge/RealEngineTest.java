package org.trackpose.bridge;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ij.ImagePlus;
import ij.ImageStack;
import ij.process.FloatProcessor;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end with the real engine: Java job writer -> {@code python -m trackpose job|serve} -> labels.tif and
 * shapes.json -> Java objects.
 *
 * <p>Runs only when the environment variable TRACKPOSE_PYTHON names a python that has trackpose installed (tests/run
 * sets it to the project's environment); skipped otherwise. Nothing is downloaded: the model is a random CPnet the
 * test saves in cellpose's format through that python (as the Python tests do), unless TRACKPOSE_TEST_MODEL names a
 * trained model file, which then also has to find the discs of a synthetic image.
 */
public class RealEngineTest {

    @TempDir
    Path tmp;

    @TempDir
    static Path shared;

    private PythonEnvironment env;

    /** One model and one worker for the whole class: making either costs seconds of Python start-up. */
    private static String model;
    private static WorkerClient worker;

    /** Centres (x, y), in pixel-corner coordinates, of three bright discs of radius 12 on a 128 x 128 image. */
    private static final double[][] DISCS = {{32, 36}, {90, 40}, {60, 95}};

    /**
     * Saves a random CPnet whose flows form basins (recipe of tests/conftest.py) and a synthetic nuclei image on which
     * it finds objects when the flow check is off.
     */
    public static final String MAKE_MODEL_AND_IMAGE = String.join("\n",
            "import sys, torch, tifffile",
            "from trackpose.net import CPnet",
            "from trackpose import synth",
            "torch.manual_seed(0)",
            "net = CPnet(diam_mean=30.0)",
            "for m in net.modules():",
            "    if isinstance(m, torch.nn.BatchNorm2d):",
            "        m.running_mean.normal_(0, 0.2); m.running_var.uniform_(0.5, 2.0)",
            "        m.weight.data.uniform_(0.5, 1.5); m.bias.data.normal_(0, 0.2)",
            "net.eval()",
            "net.output[2].weight.data[:2] *= 20",
            "net.output[2].bias.data[2] = 0.5",
            "net.diam_labels.data.fill_(24.0)",
            "torch.save(net.state_dict(), sys.argv[1])",
            "image, labels = synth.nuclei_image((256, 256), seed=1, crowding=0.5)",
            "tifffile.imwrite(sys.argv[2], image.astype('float32'))",
            "");

    @BeforeEach
    void needsTheEngine() {
        String python = System.getenv("TRACKPOSE_PYTHON");
        assumeTrue(python != null && !python.trim().isEmpty(), "TRACKPOSE_PYTHON not set");
        env = PythonEnvironment.python(python.trim());
    }

    @AfterAll
    static void stopWorker() {
        if (worker != null) {
            worker.close();
        }
    }

    private WorkerClient worker() {
        if (worker == null) {
            worker = new WorkerClient(env).timeout(Duration.ofMinutes(10));
        }
        return worker;
    }

    private static Path nuclei;

    private void makeModelAndImage() throws Exception {
        if (nuclei != null) {
            return;
        }
        Path modelFile = shared.resolve("random_cp");
        Path imageFile = shared.resolve("nuclei.tif");
        List<String> argv = env.pythonCommand("-c", MAKE_MODEL_AND_IMAGE, modelFile.toString(), imageFile.toString());
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "making the test model and image timed out");
        assertEquals(0, p.exitValue(), "making the test model and image failed:\n" + out);
        model = modelFile.toString();
        nuclei = imageFile;
    }

    private String model() throws Exception {
        String given = System.getenv("TRACKPOSE_TEST_MODEL");
        if (given != null && !given.trim().isEmpty()) {
            return given.trim();
        }
        makeModelAndImage();
        return model;
    }

    /** {@code frames} copies of a 256 x 256 synthetic nuclei image (written by the engine's python), 0.5 micron. */
    private ImagePlus nuclei(int frames) throws Exception {
        makeModelAndImage();
        ImagePlus one = new ij.io.Opener().openImage(nuclei.toString());
        assertNotNull(one, "ImageJ reads the TIFF python wrote");
        ImageStack stack = new ImageStack(one.getWidth(), one.getHeight());
        for (int t = 0; t < frames; t++) {
            stack.addSlice(one.getProcessor().duplicate());
        }
        ImagePlus imp = new ImagePlus("nuclei", stack);
        imp.setDimensions(1, 1, frames);
        imp.getCalibration().pixelWidth = 0.5;
        imp.getCalibration().pixelHeight = 0.5;
        imp.getCalibration().setUnit("micron");
        return imp;
    }

    private DetectorSettings settings(String model) {
        return DetectorSettings.defaults().set(DetectorKeys.KEY_PRETRAINED_OR_CUSTOM, DetectorKeys.CUSTOM)
                .set(DetectorKeys.KEY_CELLPOSE_MODEL_FILEPATH, model).set(DetectorKeys.KEY_CELL_DIAMETER, 12.0)
                .set(DetectorKeys.KEY_USE_GPU, false).set(DetectorKeys.KEY_SIMPLIFY_CONTOURS, false)
                .set(DetectorKeys.KEY_FLOW_THRESHOLD, 0.0) // a random network's flows fail the flow check
                .set(DetectorKeys.KEY_STITCH_MIN_MEAN_CELLPROB, 0.0); // and its logits stay near 0: keep faint objects
    }

    /** 128 x 128 float frames with 0.5 micron pixels; the discs move 2 pixels right per frame. */
    private static ImagePlus discs(int frames) {
        ImageStack stack = new ImageStack(128, 128);
        Random random = new Random(1);
        for (int t = 0; t < frames; t++) {
            FloatProcessor fp = new FloatProcessor(128, 128);
            for (int y = 0; y < 128; y++) {
                for (int x = 0; x < 128; x++) {
                    double v = 10 + 2 * random.nextGaussian();
                    for (double[] d : DISCS) {
                        if (Math.hypot(x + 0.5 - d[0] - 2 * t, y + 0.5 - d[1]) < 12) {
                            v += 100;
                        }
                    }
                    fp.setf(x, y, (float) v);
                }
            }
            stack.addSlice(fp);
        }
        ImagePlus imp = new ImagePlus("discs", stack);
        imp.setDimensions(1, 1, frames);
        imp.getCalibration().pixelWidth = 0.5;
        imp.getCalibration().pixelHeight = 0.5;
        imp.getCalibration().setUnit("micron");
        return imp;
    }

    @Test
    void environmentCheckFindsTrackpose() {
        EnvironmentCheck c = env.check(Duration.ofSeconds(120));
        assertTrue(c.ok(), c + "\n" + c.output());
        assertNotNull(c.version());
    }

    /**
     * The conventions of both sides agree: with unsimplified outlines (pixel-corner tracing) the polygon of a simple
     * object has exactly the label's area and centroid, in physical units, inside the image.
     */
    private static void assertConsistent(Detections d, ImagePlus image) {
        double pw = image.getCalibration().pixelWidth;
        int exact = 0;
        for (DetectedObject o : d.all()) {
            assertTrue(o.x() >= -pw && o.x() <= image.getWidth() * pw, o.toString());
            assertTrue(o.y() >= -pw && o.y() <= image.getHeight() * pw, o.toString());
            assertTrue(o.quality() >= 0 && o.quality() <= 1, "quality in 0..1: " + o);
            double[] xs = o.polygonX();
            double[] ys = o.polygonY();
            assertTrue(xs.length >= 3);
            double area = Math.abs(ResultsReader.signedArea(xs, ys));
            double cx = 0;
            double cy = 0;
            double a2 = 0;
            for (int i = 0, j = xs.length - 1; i < xs.length; j = i++) {
                double cross = xs[j] * ys[i] - xs[i] * ys[j];
                a2 += cross;
                cx += (xs[j] + xs[i]) * cross;
                cy += (ys[j] + ys[i]) * cross;
            }
            cx /= 3 * a2;
            cy /= 3 * a2;
            if (Math.abs(area - o.size()) < 1e-6 && Math.hypot(cx - o.x(), cy - o.y()) < 1e-6) {
                exact++;
            }
        }
        assertTrue(exact >= 0.8 * d.count(), exact + " of " + d.count() + " polygons match their labels exactly");
    }

    @Test
    void oneShotJobGivesConsistentObjects() throws Exception {
        ImagePlus image = nuclei(2);
        EngineEventTest.RecordingLogger log = new EngineEventTest.RecordingLogger();
        Detections d = new BridgeClient(env).logger(log).timeout(Duration.ofMinutes(10)).tempRoot(tmp)
                .detect(image, null, null, settings(model()));
        assertEquals(List.of(0, 1), d.frames());
        assertTrue(log.snapshot().contains("PROGRESS 2/2 frame 1"), log.snapshot().toString());
        assertTrue(d.objects(0).size() > 3, "the test model finds objects: " + d.objects(0).size());
        assertEquals(d.objects(0).size(), d.objects(1).size(), "the same frame twice, the same objects");
        for (int i = 0; i < d.objects(0).size(); i++) {
            assertEquals(d.objects(0).get(i).x(), d.objects(1).get(i).x(), 1e-9);
            assertEquals(1, d.objects(1).get(i).frame());
        }
        assertConsistent(d, image);
        assertEquals(2, d.labels().getStackSize());
    }

    @Test
    void roiOffsetMovesObjectsByTheOffset() throws Exception {
        ImagePlus image = nuclei(1);
        BridgeClient client = new BridgeClient(worker()).tempRoot(tmp);
        Detections whole = client.detect(image, null, null, settings(model()));
        // the same pixels placed at (16, 8) in a larger image come back shifted by (16, 8) pixels
        ImagePlus larger = new ImagePlus("larger", new FloatProcessor(300, 280));
        larger.getProcessor().insert(image.getProcessor(), 16, 8);
        larger.setCalibration(image.getCalibration().copy());
        Detections cropped = client.detect(larger, new java.awt.Rectangle(16, 8, 256, 256), null, settings(model()));
        assertTrue(whole.count() > 3);
        assertEquals(whole.count(), cropped.count());
        for (int i = 0; i < whole.count(); i++) {
            assertEquals(whole.all().get(i).x() + 16 * 0.5, cropped.all().get(i).x(), 1e-9);
            assertEquals(whole.all().get(i).y() + 8 * 0.5, cropped.all().get(i).y(), 1e-9);
        }
    }

    @Test
    void persistentWorkerGivesTheSameObjectsAsAFreshProcess() throws Exception {
        ImagePlus image = nuclei(1);
        Detections once = new BridgeClient(env).timeout(Duration.ofMinutes(10)).tempRoot(tmp)
                .detect(image, null, null, settings(model()));
        BridgeClient client = new BridgeClient(worker()).tempRoot(tmp);
        Detections first = client.detect(image, null, null, settings(model()));
        int starts = worker().starts();
        Detections second = client.detect(image, null, null, settings(model()));
        assertEquals(starts, worker().starts(), "the second job reuses the worker");
        assertTrue(once.count() > 3);
        assertEquals(once.count(), first.count());
        assertEquals(first.count(), second.count());
        for (int i = 0; i < first.count(); i++) {
            assertEquals(once.all().get(i).x(), first.all().get(i).x(), 1e-9);
            assertEquals(first.all().get(i).y(), second.all().get(i).y(), 1e-9);
        }
    }

    @Test
    void stitchedZStackGivesVolumesAndMeshes() throws Exception {
        // three identical planes, 2D + Z stitching: each object is a column of three planes
        ImagePlus plane = nuclei(1);
        ImageStack stack = new ImageStack(plane.getWidth(), plane.getHeight());
        for (int z = 0; z < 3; z++) {
            stack.addSlice(plane.getProcessor().duplicate());
        }
        ImagePlus zstack = new ImagePlus("zstack", stack);
        zstack.setDimensions(1, 3, 1);
        zstack.setCalibration(plane.getCalibration().copy());
        zstack.getCalibration().pixelDepth = 1.0;
        DetectorSettings s = settings(model()).set(DetectorKeys.KEY_MODE_3D, true).set(DetectorKeys.KEY_DO2DZ, true);
        Detections d = new BridgeClient(worker()).tempRoot(tmp).detect(zstack, null, null, s);
        assertTrue(d.count() > 3, "objects: " + d.count());
        assertEquals(3, d.labels().getStackSize());
        int columns = 0;
        int meshed = 0;
        for (DetectedObject o : d.all()) {
            assertTrue(o.is3D());
            assertNull(o.polygonX());
            if (Math.abs(o.z() - 1.0) < 1e-9) {
                columns++; // centred on the middle plane, at 1 * pixelDepth
            }
            Mesh m = o.mesh();
            if (m == null) {
                continue;
            }
            meshed++;
            double[] v = m.vertices();
            double[] min = {Double.MAX_VALUE, Double.MAX_VALUE, Double.MAX_VALUE};
            double[] max = {-Double.MAX_VALUE, -Double.MAX_VALUE, -Double.MAX_VALUE};
            for (int i = 0; i < v.length; i++) {
                min[i % 3] = Math.min(min[i % 3], v[i]);
                max[i % 3] = Math.max(max[i % 3], v[i]);
            }
            assertTrue(o.x() > min[0] && o.x() < max[0] && o.y() > min[1] && o.y() < max[1], o.toString());
            if (Math.abs(o.z() - 1.0) < 1e-9) {
                // the surface runs along the voxel faces: planes 0..2 span corners 0..3, i.e. -0.5 .. 2.5 micron
                assertEquals(-0.5, min[2], 1e-4, o.toString());
                assertEquals(2.5, max[2], 1e-4, o.toString());
            }
        }
        assertTrue(columns >= 0.8 * d.count(), columns + " of " + d.count() + " objects span the three planes");
        assertTrue(meshed >= 0.8 * d.count(), meshed + " of " + d.count() + " objects have a mesh");
    }

    @Test
    void unknownModelIsTheEnginesError() throws Exception {
        DetectorSettings s = DetectorSettings.defaults().set(DetectorKeys.KEY_CELLPOSE_MODEL, "no_such_model_anywhere")
                .set(DetectorKeys.KEY_USE_GPU, false);
        BridgeException e = assertThrows(BridgeException.class, () -> new BridgeClient(env)
                .timeout(Duration.ofMinutes(5)).tempRoot(tmp).detect(nuclei(1), null, null, s));
        assertTrue(e.getMessage().contains("no_such_model_anywhere"), e.getMessage());
        assertNotEquals(BridgeException.Kind.OUTPUT, e.kind(), "an error event, not an empty result");
        try (java.util.stream.Stream<Path> left = Files.list(tmp)) {
            assertEquals(0, left.filter(p -> p.getFileName().toString().startsWith("trackpose-job-")).count());
        }
    }

    /**
     * The real engine on a "full disk": it runs under {@code prlimit --fsize} (util-linux), so that no file it writes
     * may grow beyond 4 kB and writing labels.tif fails (EFBIG, as ENOSPC on a full disk). The Java side wrote the
     * job folder before, without the limit.
     */
    @Test
    void fullDiskInTheEngineIsAnErrorWithItsMessageAndNoFolderLeft() throws Exception {
        Path prlimit = java.nio.file.Paths.get("/usr/bin/prlimit");
        assumeTrue(Files.isExecutable(prlimit), "needs prlimit (util-linux)");
        EngineCommand limited = new EngineCommand() {
            @Override
            public List<String> jobCommand(Path jobDir) throws BridgeException {
                List<String> argv = new ArrayList<>(List.of(prlimit.toString(), "--fsize=4096:4096"));
                argv.addAll(env.jobCommand(jobDir));
                return argv;
            }

            @Override
            public List<String> serveCommand() throws BridgeException {
                throw new UnsupportedOperationException();
            }

            @Override
            public Map<String, String> environment() {
                return env.environment();
            }

            @Override
            public String describe() {
                return env.describe() + " under prlimit --fsize=4096";
            }
        };
        BridgeException e = assertThrows(BridgeException.class, () -> new BridgeClient(limited)
                .timeout(Duration.ofMinutes(5)).tempRoot(tmp).detect(nuclei(1), null, null, settings(model())));
        assertEquals(BridgeException.Kind.IO, e.kind(), e.getMessage());
        assertEquals("disk", e.engineKind());
        assertTrue(e.getMessage().startsWith("disk full / file too large at "), e.getMessage());
        assertTrue(e.getMessage().contains("labels.tif"), e.getMessage());
        assertNotEquals(0, e.exitCode());
        try (java.util.stream.Stream<Path> left = Files.list(tmp)) {
            assertEquals(0, left.count(), "no job folder left");
        }
    }

    @Test
    void engineRejectsAChannelThatDoesNotExist() throws Exception {
        // the Java side checks this too; write the job by hand to see the engine's own message
        JobInput input = JobInput.crop(nuclei(1), null, null);
        try (JobFolder job = JobFolder.create(tmp, false)) {
            job.writeInput(input.image());
            Map<String, Object> json = JobFolder.jobJson(settings(model()), input);
            @SuppressWarnings("unchecked")
            Map<String, Object> s = new LinkedHashMap<>((Map<String, Object>) json.get("settings"));
            List<Integer> channels = new ArrayList<>();
            channels.add(3);
            channels.add(0);
            s.put("channels", channels);
            json.put("settings", s);
            job.writeJob(json);
            BridgeException e = assertThrows(BridgeException.class,
                    () -> new JobRunner(env).timeout(Duration.ofMinutes(5)).run(job, null));
            assertEquals(BridgeException.Kind.INPUT, e.kind(), e.getMessage());
            assertTrue(e.getMessage().contains("channel 3"), e.getMessage());
            assertNotEquals(0, e.exitCode());
        }
    }

    @Test
    void trainedModelFindsTheDiscs() throws Exception {
        // The engine's built-in model (trained, shipped in the package) unless TRACKPOSE_TEST_MODEL names a file.
        String given = System.getenv("TRACKPOSE_TEST_MODEL");
        DetectorSettings settings = given != null && !given.trim().isEmpty() ? settings(given.trim())
                : settings("unused").set(DetectorKeys.KEY_PRETRAINED_OR_CUSTOM, DetectorKeys.PRETRAINED)
                        .set(DetectorKeys.KEY_CELLPOSE_MODEL, DetectorKeys.DEFAULT_CELLPOSE_MODEL);
        Detections d = new BridgeClient(env).timeout(Duration.ofMinutes(10)).tempRoot(tmp)
                .detect(discs(2), null, null, settings.set(DetectorKeys.KEY_FLOW_THRESHOLD, 0.4));
        for (int t = 0; t < 2; t++) {
            assertEquals(DISCS.length, d.objects(t).size(), "frame " + t + ": " + d.objects(t));
            for (DetectedObject o : d.objects(t)) {
                double best = Double.MAX_VALUE;
                for (double[] disc : DISCS) {
                    // TrackMate's convention: pixel i's centre is at i * calibration, so a corner coordinate c
                    // is at (c - 0.5) * calibration
                    best = Math.min(best, Math.hypot(o.x() - (disc[0] + 2 * t - 0.5) * 0.5,
                            o.y() - (disc[1] - 0.5) * 0.5));
                }
                assertTrue(best < 1.5, o + " is " + best + " micron from the nearest disc");
                assertEquals(6.0, o.radius(), 1.5, "radius ~ 12 px * 0.5 micron");
            }
        }
    }
}
