package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;

import ij.ImagePlus;
import net.imagej.ImgPlus;
import net.imagej.axis.Axes;
import net.imagej.axis.AxisType;
import net.imglib2.FinalInterval;
import net.imglib2.img.Img;
import net.imglib2.img.array.ArrayImgs;
import net.imglib2.type.numeric.integer.UnsignedByteType;
import net.imglib2.type.numeric.integer.UnsignedShortType;
import net.imglib2.type.numeric.real.FloatType;
import org.junit.jupiter.api.Test;
import org.trackpose.bridge.JobInput;

/** TrackMate's image and interval -> the bridge's job input: crop, frames, channels, pixel types, calibration. */
class TrackMateInputTest {

    /** 12 x 10 pixels, 2 channels, 4 planes, 3 frames; pixel value = 1000 t + 100 z + 10 c + (x + y) % 10. */
    private static ImagePlus movie() {
        ImagePlus imp = TestImages.blank(12, 10, 2, 4, 3, 0.25, 1.5);
        for (int t = 0; t < 3; t++) {
            for (int z = 0; z < 4; z++) {
                for (int c = 0; c < 2; c++) {
                    for (int y = 0; y < 10; y++) {
                        for (int x = 0; x < 12; x++) {
                            imp.getStack().getProcessor(imp.getStackIndex(c + 1, z + 1, t + 1))
                                    .set(x, y, 1000 * t + 100 * z + 10 * c + (x + y) % 10);
                        }
                    }
                }
            }
        }
        return imp;
    }

    @Test
    void theIntervalSelectsTheCropPlanesAndFramesWithAllChannels() {
        ImgPlus<FloatType> img = TestImages.imgPlus(movie());
        // TrackMate 8: X, Y, Z, T (no channel), inclusive bounds
        TrackMateInput in = TrackMateInput.of(img, TestImages.interval(img, 3, 2, 9, 6, 1, 2, 1, 2));
        JobInput job = in.jobInput();
        assertArrayEquals(new int[] {1, 2}, job.frames());
        assertEquals(3, job.offsetX());
        assertEquals(2, job.offsetY());
        assertEquals(1, in.layout().zOffset());
        ImagePlus imp = job.image();
        assertEquals(7, imp.getWidth());
        assertEquals(5, imp.getHeight());
        assertEquals(2, imp.getNChannels());
        assertEquals(2, imp.getNSlices());
        assertEquals(2, imp.getNFrames());
        for (int t = 0; t < 2; t++) {
            for (int z = 0; z < 2; z++) {
                for (int c = 0; c < 2; c++) {
                    double expected = 1000 * (t + 1) + 100 * (z + 1) + 10 * c + (3 + 4 + 2 + 1) % 10;
                    assertEquals(expected, imp.getStack().getProcessor(imp.getStackIndex(c + 1, z + 1, t + 1))
                            .getf(4, 1), 0, "t=" + t + " z=" + z + " c=" + c);
                }
            }
        }
        assertEquals(0.25, imp.getCalibration().pixelWidth);
        assertEquals(0.25, imp.getCalibration().pixelHeight);
        assertEquals(1.5, imp.getCalibration().pixelDepth);
    }

    @Test
    void anIntervalWithoutTimeMeansEveryFrame() {
        ImgPlus<FloatType> img = TestImages.imgPlus(movie());
        TrackMateInput in = TrackMateInput.of(img, new FinalInterval(new long[] {0, 0, 0}, new long[] {11, 9, 3}));
        assertArrayEquals(new int[] {0, 1, 2}, in.jobInput().frames());
        assertEquals(4, in.jobInput().nSlices());
    }

    @Test
    void aSingleFrameImageHasFrameZeroAndAnIntervalBeyondTheImageIsClipped() {
        ImgPlus<FloatType> img = TestImages.imgPlus(TestImages.blank(12, 10, 1, 1, 1, 1, 1));
        TrackMateInput in = TrackMateInput.of(img, new FinalInterval(new long[] {-5, 4}, new long[] {20, 30}));
        assertArrayEquals(new int[] {0}, in.jobInput().frames());
        assertEquals(12, in.jobInput().width());
        assertEquals(6, in.jobInput().height());
        assertEquals(0, in.jobInput().offsetX());
        assertEquals(4, in.jobInput().offsetY());
    }

    @Test
    void eightAndSixteenBitPixelsAreKeptOthersBecomeFloat() {
        Img<UnsignedByteType> bytes = ArrayImgs.unsignedBytes(4, 3);
        bytes.forEach(p -> p.set(200));
        ImgPlus<UnsignedByteType> b = new ImgPlus<>(bytes, "b", new AxisType[] {Axes.X, Axes.Y}, new double[] {1, 1});
        ImagePlus imp = TrackMateInput.of(b, new FinalInterval(4, 3)).jobInput().image();
        assertEquals(8, imp.getBitDepth());
        assertEquals(200, imp.getProcessor().get(1, 1));

        Img<UnsignedShortType> shorts = ArrayImgs.unsignedShorts(4, 3);
        shorts.forEach(p -> p.set(60000));
        ImgPlus<UnsignedShortType> s = new ImgPlus<>(shorts, "s", new AxisType[] {Axes.X, Axes.Y},
                new double[] {1, 1});
        imp = TrackMateInput.of(s, new FinalInterval(4, 3)).jobInput().image();
        assertEquals(16, imp.getBitDepth());
        assertEquals(60000, imp.getProcessor().get(1, 1));

        ImgPlus<FloatType> f = TestImages.imgPlus(TestImages.blank(4, 3, 1, 1, 1, 1, 1));
        assertEquals(32, TrackMateInput.of(f, new FinalInterval(4, 3)).jobInput().image().getBitDepth());
    }

    @Test
    void yBeforeXIsTransposedBack() {
        Img<FloatType> yx = ArrayImgs.floats(3, 4); // dimension 0 is Y (3 rows), dimension 1 is X (4 columns)
        net.imglib2.RandomAccess<FloatType> ra = yx.randomAccess();
        ra.setPosition(new long[] {2, 1});
        ra.get().set(7); // row 2, column 1
        ImgPlus<FloatType> img = new ImgPlus<>(yx, "yx", new AxisType[] {Axes.Y, Axes.X}, new double[] {1, 1});
        ImagePlus imp = TrackMateInput.of(img, new FinalInterval(3, 4)).jobInput().image();
        assertEquals(4, imp.getWidth());
        assertEquals(3, imp.getHeight());
        assertEquals(7, imp.getProcessor().getf(1, 2));
    }

    @Test
    void anIntervalThatDoesNotMatchTheImageIsRefused() {
        ImgPlus<FloatType> img = TestImages.imgPlus(movie());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TrackMateInput.layout(img, new FinalInterval(12, 10)));
        assertTrue(e.getMessage().contains("the interval has 2 dimensions but the image has 5"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TrackMateInput.layout(img,
                new FinalInterval(new long[] {20, 0, 0, 0}, new long[] {30, 9, 3, 2})));
        assertTrue(e.getMessage().contains("selects nothing along the X axis"), e.getMessage());
    }
}
