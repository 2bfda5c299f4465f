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
import ij.process.FloatProcessor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import net.imagej.ImgPlus;
import net.imglib2.type.numeric.real.FloatType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.trackpose.bridge.DetectorKeys;
import org.trackpose.trackmate.TestImages.Blob;

/**
 * The detector with the real engine and its built-in model ({@code trackpose_default}, trained on synthetic bright
 * nuclei) on images drawn here with known objects: discs in a 2D movie, balls in a Z stack. The spots must match
 * the ground truth the images were drawn from: one spot per object in the right frame, its position within a pixel
 * of the object's centre (physical units, ROI and Z-crop offsets included), its outline's area within 10% of the
 * disc's (2D). Runs only when TRACKPOSE_PYTHON names a
 * python with trackpose installed (tests/run sets it).
 */
class TrackposeGroundTruthTest {

    @TempDir
    Path tmp;

    private String python;

    private static final double PW = 0.5; // micron per pixel in X and Y

    /** One object of the ground truth: centre in pixels of the whole image, radius in pixels. */
    @BeforeEach
    void needsTheEngine() {
        String p = System.getenv("TRACKPOSE_PYTHON");
        assumeTrue(p != null && !p.trim().isEmpty(), "TRACKPOSE_PYTHON not set");
        python = p.trim();
    }

    @AfterEach
    void backToDetectedApi() {
        SpotMaker.force(null);
    }

    @AfterAll
    static void stopPreviewWorker() {
        EngineWorkers.closeAll();
    }

    private Map<String, Object> settings(double diameter) {
        Map<String, Object> s = DetectorKeys.defaults(); // built-in model trackpose_default
        s.put(KEY_PYTHON_ENV_KIND, ENV_PYTHON);
        s.put(KEY_PYTHON_ENV_PATH, python);
        s.put(KEY_CELL_DIAMETER, diameter);
        s.put(KEY_USE_GPU, false);
        s.put(KEY_SIMPLIFY_CONTOURS, false); // pixel-exact outlines: their area is the object's pixel area
        return s;
    }

    private static double distance(double ax, double ay, double az, double bx, double by, double bz) {
        return Math.sqrt((ax - bx) * (ax - bx) + (ay - by) * (ay - by) + (az - bz) * (az - bz));
    }

    /** The spot of {@code frame} nearest to (x, y, z) (physical units). */
    private static Spot nearest(SpotCollection spots, int frame, double x, double y, double z) {
        Spot best = null;
        double bestD = Double.MAX_VALUE;
        for (Spot s : spots.iterable(frame, false)) {
            double d = distance(s.getFeature(Spot.POSITION_X), s.getFeature(Spot.POSITION_Y),
                    s.getFeature(Spot.POSITION_Z), x, y, z);
            if (d < bestD) {
                bestD = d;
                best = s;
            }
        }
        return best;
    }

    @Test
    void a2DMovieGivesOneSpotPerDiscAtItsCentreWithItsOutline() {
        int w = 112;
        int h = 96;
        double r = 8; // pixels: 8 micron diameter
        double[][] centres = {{24.3, 22.6}, {70.5, 26.2}, {30.8, 66.4}, {78.1, 70.7}};
        int[] shift = {5, 3}; // pixels per frame
        int frames = 2;
        Random noise = new Random(7);
        ImageStack stack = new ImageStack(w, h);
        List<List<Blob>> truth = new ArrayList<>();
        for (int t = 0; t < frames; t++) {
            List<Blob> blobs = new ArrayList<>();
            for (double[] c : centres) {
                blobs.add(new Blob(c[0] + shift[0] * t, c[1] + shift[1] * t, Double.NaN, r));
            }
            truth.add(blobs);
            stack.addSlice(TestImages.plane(w, h, blobs, 0, noise));
        }
        ImagePlus movie = new ImagePlus("discs", stack);
        movie.setDimensions(1, 1, frames);
        movie.getCalibration().pixelWidth = PW;
        movie.getCalibration().pixelHeight = PW;
        movie.getCalibration().setUnit("micron");
        ImgPlus<FloatType> img = TestImages.imgPlus(movie);
        RecordingLogger log = new RecordingLogger();
        // a ROI box that leaves out a margin: positions must still be in the whole image's coordinates
        SpotGlobalDetector<FloatType> d = new TrackposeDetectorFactory<FloatType>().tempRoot(tmp)
                .getDetector(img, settings(2 * r * PW), TestImages.interval(img, 6, 4, w - 3, h - 5, 0, 0, 0, 1));
        d.setLogger(log);
        assertTrue(d.checkInput(), d.getErrorMessage());
        assertTrue(d.process(), d.getErrorMessage() + "\n" + log.lines());
        SpotCollection spots = d.getResult();
        double trueArea = Math.PI * r * r * PW * PW;
        for (int t = 0; t < frames; t++) {
            assertEquals(centres.length, spots.getNSpots(t, false), "one spot per disc in frame " + t);
            for (Blob b : truth.get(t)) {
                double x = b.x * PW;
                double y = b.y * PW;
                Spot s = nearest(spots, t, x, y, 0);
                double off = distance(s.getFeature(Spot.POSITION_X), s.getFeature(Spot.POSITION_Y), 0, x, y, 0);
                assertTrue(off < PW, "frame " + t + ": disc at (" + x + ", " + y + ") has a spot " + off
                        + " micron away: " + s);
                assertEquals(t, s.getFeature(Spot.FRAME).intValue());
                SpotRoi roi = s.getRoi();
                assertNotNull(roi, "2D spots carry their outline");
                double area = TestImages.polygonArea(roi.x, roi.y);
                assertEquals(trueArea, area, 0.1 * trueArea, "frame " + t + ": outline area of the disc at ("
                        + x + ", " + y + ")");
                assertEquals(Math.sqrt(trueArea / Math.PI), s.getFeature(Spot.RADIUS), 0.05 * r * PW);
            }
        }
    }

    @Test
    void aZStackGivesOneSpotPerBallAtItsCentreAndTrackMate9MeshesAroundThem() {
        int w = 60;
        int h = 60;
        int nz = 20;
        double pd = 0.5; // isotropic voxels: the 3D network sees the balls round
        double r = 7;
        List<Blob> balls = new ArrayList<>();
        balls.add(new Blob(16.4, 17.2, 9.6, r));
        balls.add(new Blob(42.7, 21.5, 10.3, r));
        balls.add(new Blob(27.2, 43.6, 9.8, r));
        Random noise = new Random(11);
        ImageStack stack = new ImageStack(w, h);
        for (int z = 0; z < nz; z++) {
            stack.addSlice(TestImages.plane(w, h, balls, z, noise));
        }
        ImagePlus imp = new ImagePlus("balls", stack);
        imp.setDimensions(1, nz, 1);
        imp.getCalibration().pixelWidth = PW;
        imp.getCalibration().pixelHeight = PW;
        imp.getCalibration().pixelDepth = pd;
        imp.getCalibration().setUnit("micron");
        ImgPlus<FloatType> img = TestImages.imgPlus(imp);
        Map<String, Object> s = settings(2 * r * PW);
        s.put(KEY_MODE_3D, true);
        s.put(KEY_DO2DZ, true); // 2D per plane + stitching: a third of true 3D's network work, fast on a CPU
        s.put(KEY_ANISOTROPY, 1.0);
        int z0 = 1; // a Z crop: planes 1..20 are sent, positions keep the whole stack's Z
        TrackposeDetectorFactory<FloatType> factory = new TrackposeDetectorFactory<FloatType>().tempRoot(tmp);
        TrackposeDetectorFactory<FloatType> worker = factory.forPreview(); // the second run reuses the engine
        // TrackMate 8 on the class path: spheres (TrackMate 9's mesh spots: SpotMakerTest, with TrackMate 9's build)
        for (SpotMaker.ShapeApi api : new SpotMaker.ShapeApi[] {SpotMaker.ShapeApi.TM8_SPHERES}) {
            SpotMaker.force(api);
            RecordingLogger log = new RecordingLogger();
            SpotGlobalDetector<FloatType> d = worker.getDetector(img, s,
                    TestImages.interval(img, 0, 0, w - 1, h - 1, z0, nz - 2, 0, 0));
            d.setLogger(log);
            assertTrue(d.checkInput(), d.getErrorMessage());
            assertTrue(d.process(), d.getErrorMessage() + "\n" + log.lines());
            assertTrue(log.lines().contains("trackpose: 3D spots are " + api.description + "."), log.lines()
                    .toString());
            SpotCollection spots = d.getResult();
            assertEquals(balls.size(), spots.getNSpots(0, false), api + ": one spot per ball");
            for (Blob b : balls) {
                double x = b.x * PW;
                double y = b.y * PW;
                double z = b.z * pd;
                Spot spot = nearest(spots, 0, x, y, z);
                double off = distance(spot.getFeature(Spot.POSITION_X), spot.getFeature(Spot.POSITION_Y),
                        spot.getFeature(Spot.POSITION_Z), x, y, z);
                assertTrue(off < PW, api + ": ball at (" + x + ", " + y + ", " + z + ") has a spot " + off
                        + " micron away: " + spot);
                assertEquals(r * PW, spot.getFeature(Spot.RADIUS), 0.1 * r * PW, api + ": radius");
                assertNull(spot.getRoi(), "a TrackMate 8 sphere");
            }
        }
    }
}
