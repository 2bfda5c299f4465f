package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.TrackMate;
import ij.ImagePlus;
import ij.process.FloatProcessor;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A frame with more label ids than a 16-bit image holds, through {@code TrackMate.execDetection()} with our factory:
 * the engine then writes its labels as 32-bit float (exact up to 2^24), and every label must become its own spot at
 * its own place. The stand-in {@link LabelEngine} answers with the input itself as the label image (a perfect
 * segmentation), so the expected spots are known exactly.
 */
class ManyObjectsInsideTrackMateTest {

    private static final int PITCH = 3; // 2 x 2 px squares with a 1 px gap
    private static final int PER_ROW = 257; // 257^2 = 66,049 labels > 65,535
    private static final double PW = 0.5;

    @TempDir
    Path tmp;

    @Test
    void aFrameWithMoreThan65535ObjectsGivesOneSpotPerObjectAtItsPlace() {
        int n = PER_ROW * PER_ROW;
        assertTrue(n > 65_535);
        int size = PER_ROW * PITCH;
        FloatProcessor fp = new FloatProcessor(size, size);
        for (int row = 0; row < PER_ROW; row++) {
            for (int col = 0; col < PER_ROW; col++) {
                int label = row * PER_ROW + col + 1;
                for (int dy = 0; dy < 2; dy++) {
                    for (int dx = 0; dx < 2; dx++) {
                        fp.setf(col * PITCH + dx, row * PITCH + dy, label);
                    }
                }
            }
        }
        ImagePlus imp = new ImagePlus("many labels", fp);
        imp.getCalibration().pixelWidth = PW;
        imp.getCalibration().pixelHeight = PW;
        imp.getCalibration().setUnit("micron");

        Settings s = new Settings(imp);
        s.detectorFactory = new TrackposeDetectorFactory<>().engineCommand(LabelEngine.command("labels")).tempRoot(tmp);
        s.detectorSettings = TrackposeDetectorTest.DetectorKeys2D.settings();
        Model model = new Model();
        RecordingLogger log = new RecordingLogger();
        model.setLogger(log);
        TrackMate tm = new TrackMate(model, s);
        assertTrue(tm.execDetection(), tm.getErrorMessage() + "\n" + log.lines());

        assertEquals(n, model.getSpots().getNSpots(0, false), "one spot per label");
        boolean[] seen = new boolean[n + 1];
        for (Spot spot : model.getSpots().iterable(0, false)) {
            // the stand-in engine's quality is label / 100: the spot's id as the engine numbered it
            int label = (int) Math.round(spot.getFeature(Spot.QUALITY) * 100);
            assertTrue(label >= 1 && label <= n, "label " + label + " of " + spot);
            assertFalse(seen[label], "label " + label + " gives one spot");
            seen[label] = true;
            int row = (label - 1) / PER_ROW;
            int col = (label - 1) % PER_ROW;
            // the centre of the 2 x 2 square, in TrackMate's convention (pixel i's centre at i * calibration)
            assertEquals((col * PITCH + 0.5) * PW, spot.getFeature(Spot.POSITION_X), 1e-9, "x of label " + label);
            assertEquals((row * PITCH + 0.5) * PW, spot.getFeature(Spot.POSITION_Y), 1e-9, "y of label " + label);
            assertEquals(Math.sqrt(4 * PW * PW / Math.PI), spot.getFeature(Spot.RADIUS), 1e-9, "label " + label);
        }
        assertTrue(log.lines().contains("trackpose: " + n + " objects in 1 frame."), log.lines().toString());
    }
}
