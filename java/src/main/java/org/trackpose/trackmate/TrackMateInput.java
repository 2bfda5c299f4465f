package org.trackpose.trackmate;

import ij.ImagePlus;
import ij.ImageStack;
import ij.measure.Calibration;
import ij.process.ByteProcessor;
import ij.process.FloatProcessor;
import ij.process.ImageProcessor;
import ij.process.ShortProcessor;
import net.imagej.ImgPlus;
import net.imagej.axis.Axes;
import net.imglib2.Cursor;
import net.imglib2.Interval;
import net.imglib2.RandomAccessibleInterval;
import net.imglib2.type.numeric.RealType;
import net.imglib2.type.numeric.integer.UnsignedByteType;
import net.imglib2.type.numeric.integer.UnsignedShortType;
import net.imglib2.view.Views;
import org.trackpose.bridge.JobInput;

/**
 * What TrackMate asks a global detector to process, as the bridge's {@link JobInput}: the crop of the source
 * {@link ImgPlus} that the interval selects (X, Y, Z and frames; every channel), copied into an ImageJ hyperstack
 * with the image's calibration.
 *
 * <p>TrackMate 8 passes the interval with the time axis last when the image has one
 * ({@code TMUtils.getIntervalWithTime}); an interval without it (what the factory's javadoc describes) means every
 * frame. The channel axis is never in the interval. 8-bit and 16-bit pixels are copied as they are, other types as
 * 32-bit float.
 */
final class TrackMateInput {

    private final Layout layout;
    private final JobInput jobInput;

    private TrackMateInput(Layout layout, JobInput jobInput) {
        this.layout = layout;
        this.jobInput = jobInput;
    }

    /** Where the image's axes are and which part of them the interval selects. Cheap: copies no pixels. */
    static final class Layout {
        final int xDim;
        final int yDim;
        final int zDim;
        final int cDim;
        final int tDim;
        final long[] min = new long[4]; // x, y, z, t in the image's pixel coordinates
        final long[] max = new long[4];
        final int nChannels;
        final double pixelWidth;
        final double pixelHeight;
        final double pixelDepth;

        Layout(ImgPlus<?> img, Interval interval) {
            xDim = img.dimensionIndex(Axes.X);
            yDim = img.dimensionIndex(Axes.Y);
            zDim = img.dimensionIndex(Axes.Z);
            cDim = img.dimensionIndex(Axes.CHANNEL);
            tDim = img.dimensionIndex(Axes.TIME);
            if (xDim < 0 || yDim < 0) {
                throw new IllegalArgumentException("the image has no " + (xDim < 0 ? "X" : "Y") + " axis");
            }
            int withoutChannel = img.numDimensions() - (cDim >= 0 ? 1 : 0);
            boolean timeInInterval;
            if (interval.numDimensions() == withoutChannel) {
                timeInInterval = tDim >= 0;
            } else if (tDim >= 0 && interval.numDimensions() == withoutChannel - 1) {
                timeInInterval = false;
            } else {
                throw new IllegalArgumentException("the interval has " + interval.numDimensions()
                        + " dimensions but the image has " + img.numDimensions() + " (channel "
                        + (cDim >= 0 ? "included" : "absent") + ", time " + (tDim >= 0 ? "included" : "absent")
                        + ")");
            }
            int[] dims = {xDim, yDim, zDim, tDim};
            for (int a = 0; a < 4; a++) {
                int d = dims[a];
                if (d < 0) {
                    continue; // no such axis: a single plane / frame 0
                }
                int i = intervalIndex(d, timeInInterval);
                long lo = i < 0 ? img.min(d) : interval.min(i);
                long hi = i < 0 ? img.max(d) : interval.max(i);
                min[a] = Math.max(lo, img.min(d));
                max[a] = Math.min(hi, img.max(d));
                if (max[a] < min[a]) {
                    throw new IllegalArgumentException("the interval selects nothing along the "
                            + "XYZT".charAt(a) + " axis (" + lo + ".." + hi + " in an image spanning " + img.min(d)
                            + ".." + img.max(d) + ")");
                }
            }
            nChannels = cDim < 0 ? 1 : (int) img.dimension(cDim);
            pixelWidth = scale(img, xDim);
            pixelHeight = scale(img, yDim);
            pixelDepth = zDim < 0 ? 1.0 : scale(img, zDim);
        }

        /** The interval dimension for image dimension d (the interval skips the channel, maybe the time). */
        private int intervalIndex(int d, boolean timeInInterval) {
            if (d == tDim && !timeInInterval) {
                return -1;
            }
            int i = 0;
            for (int k = 0; k < d; k++) {
                if (k != cDim && !(k == tDim && !timeInInterval)) {
                    i++;
                }
            }
            return i;
        }

        private static double scale(ImgPlus<?> img, int d) {
            double s = img.averageScale(d);
            return s > 0 && !Double.isInfinite(s) ? s : 1.0;
        }

        int width() {
            return (int) (max[0] - min[0] + 1);
        }

        int height() {
            return (int) (max[1] - min[1] + 1);
        }

        int nSlices() {
            return (int) (max[2] - min[2] + 1);
        }

        /** TrackMate frame numbers, in order. */
        int[] frames() {
            int[] frames = new int[(int) (max[3] - min[3] + 1)];
            for (int i = 0; i < frames.length; i++) {
                frames[i] = (int) (min[3] + i);
            }
            return frames;
        }

        /** The first Z plane sent, in the image's planes. */
        int zOffset() {
            return (int) min[2];
        }

        @Override
        public String toString() {
            int[] f = frames();
            return width() + " x " + height() + (nSlices() > 1 ? " x " + nSlices() + " planes" : "") + ", "
                    + nChannels + " channel" + (nChannels == 1 ? "" : "s") + ", " + f.length + " frame"
                    + (f.length == 1 ? " (" + f[0] + ")" : "s (" + f[0] + ".." + f[f.length - 1] + ")")
                    + " from (" + min[0] + ", " + min[1] + (nSlices() > 1 || min[2] > 0 ? ", " + min[2] : "") + ")";
        }
    }

    /** The layout alone, to check an image and interval before copying anything. */
    static Layout layout(ImgPlus<?> img, Interval interval) {
        return new Layout(img, interval);
    }

    /** Copies the selected part of {@code img}. */
    static <T extends RealType<T>> TrackMateInput of(ImgPlus<T> img, Interval interval) {
        Layout l = new Layout(img, interval);
        int w = l.width();
        int h = l.height();
        int[] frames = l.frames();
        T type = img.getType();
        ImageStack stack = new ImageStack(w, h);
        for (int t : frames) {
            for (long z = l.min[2]; z <= l.max[2]; z++) {
                for (int c = 0; c < l.nChannels; c++) {
                    stack.addSlice(plane(img, l, c, z, t, type));
                }
            }
        }
        ImagePlus imp = new ImagePlus(img.getName() == null ? "input" : img.getName(), stack);
        imp.setDimensions(l.nChannels, l.nSlices(), frames.length);
        if (imp.getStackSize() > 1) {
            imp.setOpenAsHyperStack(true);
        }
        Calibration cal = imp.getCalibration();
        cal.pixelWidth = l.pixelWidth;
        cal.pixelHeight = l.pixelHeight;
        cal.pixelDepth = l.pixelDepth;
        return new TrackMateInput(l, JobInput.of(imp, frames, (int) l.min[0], (int) l.min[1]));
    }

    private static <T extends RealType<T>> ImageProcessor plane(ImgPlus<T> img, Layout l, int c, long z, long t,
            T type) {
        // slice away T, Z and C, highest dimension first so that the lower indices stay valid
        RandomAccessibleInterval<T> view = img;
        int[] sliced = {l.tDim, l.zDim, l.cDim};
        java.util.Arrays.sort(sliced);
        for (int k = sliced.length - 1; k >= 0; k--) {
            int d = sliced[k];
            if (d < 0) {
                continue;
            }
            long pos = d == l.tDim ? t : d == l.zDim ? z : c;
            view = Views.hyperSlice(view, d, pos);
        }
        // now 2D, X and Y in the image's order
        boolean xFirst = l.xDim < l.yDim;
        long[] lo = xFirst ? new long[] {l.min[0], l.min[1]} : new long[] {l.min[1], l.min[0]};
        long[] hi = xFirst ? new long[] {l.max[0], l.max[1]} : new long[] {l.max[1], l.max[0]};
        view = Views.interval(view, lo, hi);
        if (!xFirst) {
            view = Views.permute(view, 0, 1);
        }
        int w = l.width();
        int n = w * l.height();
        Cursor<T> cursor = Views.flatIterable(view).cursor(); // x fastest, then y
        if (type instanceof UnsignedByteType) {
            byte[] px = new byte[n];
            for (int i = 0; i < n; i++) {
                px[i] = (byte) ((UnsignedByteType) cursor.next()).get();
            }
            return new ByteProcessor(w, l.height(), px);
        }
        if (type instanceof UnsignedShortType) {
            short[] px = new short[n];
            for (int i = 0; i < n; i++) {
                px[i] = (short) ((UnsignedShortType) cursor.next()).get();
            }
            return new ShortProcessor(w, l.height(), px, null);
        }
        float[] px = new float[n];
        for (int i = 0; i < n; i++) {
            px[i] = cursor.next().getRealFloat();
        }
        return new FloatProcessor(w, l.height(), px);
    }

    JobInput jobInput() {
        return jobInput;
    }

    Layout layout() {
        return layout;
    }
}
