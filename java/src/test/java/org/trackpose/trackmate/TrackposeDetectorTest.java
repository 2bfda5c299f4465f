package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotCollection;
import fiji.plugin.trackmate.SpotRoi;
import fiji.plugin.trackmate.detection.SpotGlobalDetector;
import ij.ImagePlus;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import net.imagej.ImgPlus;
import net.imglib2.FinalInterval;
import net.imglib2.type.numeric.real.FloatType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The detector end to end with a stand-in engine ({@link LabelEngine}, a real child process) that answers with the
 * input itself as the label image: the spots must sit exactly where the labels are, in the source image's physical
 * coordinates, whatever the crop, Z range, frames and channel.
 */
class TrackposeDetectorTest {

    @TempDir
    Path tmp;

    private final RecordingLogger log = new RecordingLogger();

    private TrackposeDetectorFactory<FloatType> factory(String scenario) {
        return new TrackposeDetectorFactory<FloatType>().engineCommand(LabelEngine.command(scenario)).tempRoot(tmp);
    }

    private SpotGlobalDetector<FloatType> detector(String scenario, ImgPlus<FloatType> img,
            Map<String, Object> settings, net.imglib2.Interval interval) {
        SpotGlobalDetector<FloatType> d = factory(scenario).getDetector(img, settings, interval);
        d.setLogger(log);
        return d;
    }

    private static List<Spot> sorted(SpotCollection spots, int frame) {
        List<Spot> l = new ArrayList<>();
        spots.iterable(frame, false).forEach(l::add);
        l.sort(Comparator.comparingDouble(s -> s.getFeature(Spot.QUALITY)));
        return l;
    }

    private void assertNoJobFolderLeft() throws Exception {
        try (Stream<Path> left = Files.list(tmp)) {
            assertEquals(0, left.count(), "job folders are removed");
        }
    }

    /** A spot of a rectangle label [x0, x1) x [y0, y1) (pixels of the source image), 2D. */
    private static void assertRectangleSpot(Spot s, int label, int frame, int x0, int y0, int x1, int y1, double pw) {
        String what = "label " + label + " in frame " + frame + ": " + s;
        assertEquals(label / 100.0, s.getFeature(Spot.QUALITY), 1e-12, what);
        assertEquals(frame, s.getFeature(Spot.FRAME).intValue(), what);
        // TrackMate's convention: the centre of pixel i is at i * calibration
        double x = (x0 + x1 - 1) / 2.0 * pw;
        double y = (y0 + y1 - 1) / 2.0 * pw;
        assertEquals(x, s.getFeature(Spot.POSITION_X), 1e-9, what);
        assertEquals(y, s.getFeature(Spot.POSITION_Y), 1e-9, what);
        assertEquals(0.0, s.getFeature(Spot.POSITION_Z), 0, what);
        double area = (x1 - x0) * (y1 - y0) * pw * pw;
        assertEquals(Math.sqrt(area / Math.PI), s.getFeature(Spot.RADIUS), 1e-9, what);
        // the outline runs along pixel edges, half a pixel from the centres; stored relative to the spot
        SpotRoi roi = s.getRoi();
        assertNotNull(roi, what);
        TreeSet<Double> xs = new TreeSet<>();
        TreeSet<Double> ys = new TreeSet<>();
        for (int i = 0; i < roi.x.length; i++) {
            xs.add(Math.rint((roi.x[i] + x) * 1e9) / 1e9);
            ys.add(Math.rint((roi.y[i] + y) * 1e9) / 1e9);
        }
        assertEquals(new TreeSet<>(Arrays.asList((x0 - 0.5) * pw, (x1 - 0.5) * pw)), xs, what);
        assertEquals(new TreeSet<>(Arrays.asList((y0 - 0.5) * pw, (y1 - 0.5) * pw)), ys, what);
    }

    @Test
    void aCropped2DMovieGivesOneSpotPerLabelInTheSourceImage() throws Exception {
        ImagePlus movie = TestImages.blank(40, 30, 1, 1, 4, 0.5, 1);
        for (int t = 0; t < 4; t++) {
            TestImages.box(movie, 0, 0, t, 5 + t, 4, 10 + t, 9, 1); // moves right one pixel per frame
            if (t != 2) {
                TestImages.box(movie, 0, 0, t, 20, 12 + t, 26, 15 + t, 2);
            }
        }
        TestImages.box(movie, 0, 0, 1, 36, 25, 39, 29, 3); // outside the ROI: not sent
        ImgPlus<FloatType> img = TestImages.imgPlus(movie);
        SpotGlobalDetector<FloatType> d = detector("labels", img, DetectorKeys2D.settings(),
                TestImages.interval(img, 2, 1, 34, 27, 0, 0, 1, 2)); // ROI x 2..34, y 1..27; frames 1..2
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertTrue(d.process(), d.getErrorMessage());

        SpotCollection spots = d.getResult();
        assertEquals(new TreeSet<>(Arrays.asList(1, 2)), spots.keySet());
        List<Spot> f1 = sorted(spots, 1);
        assertEquals(2, f1.size(), f1.toString());
        assertRectangleSpot(f1.get(0), 1, 1, 6, 4, 11, 9, 0.5);
        assertRectangleSpot(f1.get(1), 2, 1, 20, 13, 26, 16, 0.5);
        List<Spot> f2 = sorted(spots, 2);
        assertEquals(1, f2.size(), f2.toString());
        assertRectangleSpot(f2.get(0), 1, 2, 7, 4, 12, 9, 0.5);

        List<String> lines = log.lines();
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("trackpose: detecting in 33 x 27, 1 channel, 2 frames "
                + "(1..2) from (2, 1)")), lines.toString());
        assertTrue(lines.contains("trackpose: 3 objects in 2 frames."), lines.toString());
        assertTrue(lines.contains("STATUS trackpose: 2 of 2 frames done"), lines.toString());
        assertEquals(1.0, log.progress());
        assertNoJobFolderLeft();
    }

    @Test
    void aFrameWithoutObjectsIsAnEmptyFrameNotAFailure() throws Exception {
        ImgPlus<FloatType> img = TestImages.imgPlus(TestImages.blank(20, 10, 1, 1, 2, 1, 1));
        SpotGlobalDetector<FloatType> d = detector("labels", img, DetectorKeys2D.settings(), TestImages.whole(img));
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertTrue(d.process(), d.getErrorMessage());
        assertEquals(new TreeSet<>(Arrays.asList(0, 1)), d.getResult().keySet());
        assertEquals(0, d.getResult().getNSpots(false));
    }

    @Test
    void zStackSpotsSitAtTheVoxelCentroidWithTheZCropAdded() throws Exception {
        ImagePlus stack = TestImages.blank(30, 20, 1, 5, 1, 0.5, 2.0);
        for (int z = 1; z <= 3; z++) {
            TestImages.box(stack, 0, z, 0, 4, 5, 10, 9, 3);
        }
        for (int z = 2; z <= 4; z++) {
            TestImages.box(stack, 0, z, 0, 15, 2, 20, 6, 4);
        }
        TestImages.box(stack, 0, 0, 0, 25, 15, 28, 18, 5); // plane 0 is outside the Z range: not sent
        ImgPlus<FloatType> img = TestImages.imgPlus(stack);
        Map<String, Object> s = DetectorKeys2D.settings();
        s.put(KEY_MODE_3D, true);
        SpotGlobalDetector<FloatType> d = detector("labels", img, s, TestImages.interval(img, 0, 0, 29, 19, 1, 4, 0, 0));
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertTrue(d.process(), d.getErrorMessage());
        List<Spot> spots = sorted(d.getResult(), 0);
        assertEquals(2, spots.size(), spots.toString());
        Spot a = spots.get(0);
        assertEquals(0.03, a.getFeature(Spot.QUALITY), 1e-12);
        assertEquals(6.5 * 0.5, a.getFeature(Spot.POSITION_X), 1e-9);
        assertEquals(6.5 * 0.5, a.getFeature(Spot.POSITION_Y), 1e-9);
        assertEquals(2 * 2.0, a.getFeature(Spot.POSITION_Z), 1e-9, "planes 1..3 of the source: centre plane 2");
        double volume = 6 * 4 * 3 * 0.5 * 0.5 * 2.0;
        assertEquals(Math.cbrt(3 * volume / (4 * Math.PI)), a.getFeature(Spot.RADIUS), 1e-9);
        assertNull(a.getRoi(), "3D spots have no 2D outline");
        Spot b = spots.get(1);
        assertEquals(17 * 0.5, b.getFeature(Spot.POSITION_X), 1e-9);
        assertEquals(3.5 * 0.5, b.getFeature(Spot.POSITION_Y), 1e-9);
        assertEquals(3 * 2.0, b.getFeature(Spot.POSITION_Z), 1e-9);
        assertNoJobFolderLeft();
    }

    @Test
    void theTargetChannelIsTheOneSegmented() throws Exception {
        ImagePlus two = TestImages.blank(20, 20, 2, 1, 1, 1, 1);
        TestImages.box(two, 0, 0, 0, 1, 1, 5, 5, 5);
        TestImages.box(two, 1, 0, 0, 10, 10, 14, 13, 6);
        TestImages.box(two, 1, 0, 0, 2, 12, 4, 18, 7);
        ImgPlus<FloatType> img = TestImages.imgPlus(two);
        Map<String, Object> s = DetectorKeys2D.settings();
        s.put(KEY_TARGET_CHANNEL, 2);
        SpotGlobalDetector<FloatType> d = detector("labels", img, s, TestImages.whole(img));
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertTrue(d.process(), d.getErrorMessage());
        List<Spot> spots = sorted(d.getResult(), 0);
        assertEquals(2, spots.size(), spots.toString());
        assertRectangleSpot(spots.get(0), 6, 0, 10, 10, 14, 13, 1);
        assertRectangleSpot(spots.get(1), 7, 0, 2, 12, 4, 18, 1);
    }

    @Test
    void anEngineFailureIsTheDetectorsErrorNeverZeroSpots() throws Exception {
        ImgPlus<FloatType> img = TestImages.imgPlus(TestImages.blank(20, 10, 1, 1, 1, 1, 1));
        SpotGlobalDetector<FloatType> d = detector("error", img, DetectorKeys2D.settings(), TestImages.whole(img));
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertFalse(d.process());
        assertNull(d.getResult());
        assertTrue(d.getErrorMessage().startsWith("trackpose detection failed"), d.getErrorMessage());
        assertTrue(d.getErrorMessage().contains("cannot load model 'broken'"), d.getErrorMessage());
        assertNoJobFolderLeft();
    }

    @Test
    void aMissingPythonIsAnEnvironmentErrorWithAHint() throws Exception {
        ImgPlus<FloatType> img = TestImages.imgPlus(TestImages.blank(20, 10, 1, 1, 1, 1, 1));
        Map<String, Object> s = DetectorKeys2D.settings();
        s.put(KEY_PYTHON_ENV_KIND, ENV_PYTHON);
        s.put(KEY_PYTHON_ENV_PATH, tmp.resolve("no-such-python").toString());
        SpotGlobalDetector<FloatType> d = new TrackposeDetectorFactory<FloatType>().tempRoot(tmp)
                .getDetector(img, s, TestImages.whole(img));
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertFalse(d.process());
        assertNull(d.getResult());
        assertTrue(d.getErrorMessage().startsWith("trackpose cannot run the engine"), d.getErrorMessage());
        assertTrue(d.getErrorMessage().contains("Check button"), d.getErrorMessage());
        assertNoJobFolderLeft();
    }

    @Test
    void cancelStopsTheEngineAndKeepsNoSpots() throws Exception {
        ImgPlus<FloatType> img = TestImages.imgPlus(TestImages.blank(20, 10, 1, 1, 3, 1, 1));
        SpotGlobalDetector<FloatType> d = detector("hang", img, DetectorKeys2D.settings(), TestImages.whole(img));
        assertTrue(d.checkInput(), d.getErrorMessage());
        CompletableFuture<Boolean> run = CompletableFuture.supplyAsync(d::process);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!log.lines().contains("trackpose: started") && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        assertTrue(log.lines().contains("trackpose: started"), "the engine started: " + log.lines());
        Optional<ProcessHandle> engine = ProcessHandle.current().descendants()
                .filter(p -> p.info().commandLine().orElse("").contains(LabelEngine.class.getName())).findFirst();
        assertTrue(engine.isPresent(), "the engine process is found");

        long start = System.nanoTime();
        ((org.scijava.Cancelable) d).cancel("the user pressed Cancel");
        assertFalse(run.get(30, TimeUnit.SECONDS), "process() fails when cancelled");
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(10), "cancel is prompt");
        assertTrue(((org.scijava.Cancelable) d).isCanceled());
        assertEquals("the user pressed Cancel", ((org.scijava.Cancelable) d).getCancelReason());
        assertNull(d.getResult());
        assertTrue(d.getErrorMessage().contains("cancelled: the user pressed Cancel"), d.getErrorMessage());
        engine.get().onExit().get(10, TimeUnit.SECONDS);
        assertFalse(engine.get().isAlive(), "the engine was stopped");
        assertNoJobFolderLeft();
    }

    @Test
    void aCancelBeforeTheRunStartsNothing() throws Exception {
        ImgPlus<FloatType> img = TestImages.imgPlus(TestImages.blank(20, 10, 1, 1, 1, 1, 1));
        SpotGlobalDetector<FloatType> d = detector("hang", img, DetectorKeys2D.settings(), TestImages.whole(img));
        ((org.scijava.Cancelable) d).cancel(null);
        assertFalse(d.process());
        assertTrue(d.getErrorMessage().contains("cancelled"), d.getErrorMessage());
        assertFalse(ProcessHandle.current().descendants()
                .anyMatch(p -> p.info().commandLine().orElse("").contains(LabelEngine.class.getName())));
    }

    /** Settings for the stand-in engine: defaults, CPU. */
    static final class DetectorKeys2D {
        static Map<String, Object> settings() {
            Map<String, Object> s = org.trackpose.bridge.DetectorKeys.defaults();
            s.put(KEY_USE_GPU, false);
            return s;
        }
    }

    @Test
    void anIntervalWithoutTimeProcessesEveryFrame() throws Exception {
        ImagePlus movie = TestImages.blank(10, 10, 1, 1, 3, 1, 1);
        for (int t = 0; t < 3; t++) {
            TestImages.box(movie, 0, 0, t, 1, 1, 3, 3, 1);
        }
        ImgPlus<FloatType> img = TestImages.imgPlus(movie);
        SpotGlobalDetector<FloatType> d = detector("labels", img, DetectorKeys2D.settings(),
                new FinalInterval(new long[] {0, 0}, new long[] {9, 9}));
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertTrue(d.process(), d.getErrorMessage());
        assertEquals(new TreeSet<>(Arrays.asList(0, 1, 2)), d.getResult().keySet());
        assertEquals(3, d.getResult().getNSpots(false));
    }
}
