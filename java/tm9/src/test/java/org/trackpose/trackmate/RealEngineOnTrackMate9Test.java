package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotRoi;
import fiji.plugin.trackmate.TrackMate;
import fiji.plugin.trackmate.features.spot.Spot2DShapeAnalyzerFactory;
import fiji.plugin.trackmate.tracking.overlap.OverlapTrackerFactory;
import ij.ImagePlus;
import ij.ImageStack;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.trackpose.bridge.DetectorKeys;

/**
 * The real engine (its built-in model, run from {@code TRACKPOSE_PYTHON}; fails without it) through the plugin jar
 * inside TrackMate 9: a 2D movie of four moving discs gives outline spots at the discs, measured by TrackMate 9's
 * 2D shape analyzer and linked by its overlap tracker.
 */
class RealEngineOnTrackMate9Test {

    @TempDir
    Path tmp;

    @Test
    void theBuiltInModelFindsAndTracksDiscsInsideTrackMate9() {
        double pw = 0.5;
        double r = 8; // pixels
        double[][] discs = {{24.3, 22.6}, {70.5, 26.2}, {30.8, 66.4}, {78.1, 70.7}};
        int frames = 3;
        Random noise = new Random(7);
        ImageStack stack = new ImageStack(112, 96);
        for (int t = 0; t < frames; t++) {
            List<TestImages.Blob> blobs = new ArrayList<>();
            for (double[] c : discs) {
                blobs.add(new TestImages.Blob(c[0] + 3 * t, c[1] + 2 * t, Double.NaN, r));
            }
            stack.addSlice(TestImages.plane(112, 96, blobs, 0, noise));
        }
        ImagePlus movie = new ImagePlus("discs", stack);
        movie.setDimensions(1, 1, frames);
        movie.setOpenAsHyperStack(true);
        movie.getCalibration().pixelWidth = pw;
        movie.getCalibration().pixelHeight = pw;
        movie.getCalibration().setUnit("micron");

        Map<String, Object> det = DetectorKeys.defaults(); // the built-in model
        det.put(KEY_PYTHON_ENV_KIND, ENV_PYTHON);
        det.put(KEY_PYTHON_ENV_PATH, EngineForTests.python());
        det.put(KEY_CELL_DIAMETER, 2 * r * pw);
        det.put(KEY_USE_GPU, false);
        Settings s = new Settings(movie);
        s.detectorFactory = new TrackposeDetectorFactory<>().tempRoot(tmp);
        s.detectorSettings = det;
        s.addAllAnalyzers();
        s.trackerFactory = new OverlapTrackerFactory();
        s.trackerSettings = s.trackerFactory.getDefaultSettings();
        Model model = new Model();
        TrackMate tm = new TrackMate(model, s);
        assertTrue(tm.checkInput(), tm.getErrorMessage());
        assertTrue(tm.process(), tm.getErrorMessage());

        double discArea = Math.PI * r * r * pw * pw;
        for (int t = 0; t < frames; t++) {
            assertEquals(discs.length, model.getSpots().getNSpots(t, false), "frame " + t);
            for (double[] c : discs) {
                double x = (c[0] + 3 * t) * pw;
                double y = (c[1] + 2 * t) * pw;
                Spot best = null;
                double bestD = Double.POSITIVE_INFINITY;
                for (Spot spot : model.getSpots().iterable(t, false)) {
                    double d = Math.hypot(spot.getDoublePosition(0) - x, spot.getDoublePosition(1) - y);
                    if (d < bestD) {
                        bestD = d;
                        best = spot;
                    }
                }
                String what = "disc at (" + x + ", " + y + "), frame " + t;
                assertTrue(bestD < pw, what + ": nearest spot " + bestD + " micron away");
                assertInstanceOf(SpotRoi.class, best, what + ": an outline spot");
                assertEquals(discArea, best.getFeature(Spot2DShapeAnalyzerFactory.AREA), 0.1 * discArea, what);
                assertTrue(best.getFeature(Spot2DShapeAnalyzerFactory.CIRCULARITY) > 0.95, what);
            }
        }
        assertEquals(discs.length, model.getTrackModel().nTracks(false), "one track per disc");
        for (Integer id : model.getTrackModel().trackIDs(false)) {
            assertEquals(frames, model.getTrackModel().trackSpots(id).size());
        }
    }
}
