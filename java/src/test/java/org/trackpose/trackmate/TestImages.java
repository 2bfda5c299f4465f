package org.trackpose.trackmate;

import ij.ImagePlus;
import ij.ImageStack;
import ij.process.FloatProcessor;
import ij.process.ImageProcessor;
import ij.process.ShortProcessor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import net.imagej.ImgPlus;
import net.imagej.axis.Axes;
import net.imagej.axis.AxisType;
import net.imglib2.Cursor;
import net.imglib2.FinalInterval;
import net.imglib2.Interval;
import net.imglib2.img.Img;
import net.imglib2.img.array.ArrayImgs;
import net.imglib2.type.numeric.real.FloatType;
import org.trackpose.bridge.Mesh;

/** Test images: ImageJ hyperstacks and the ImgPlus TrackMate would make of them (axes X, Y, [C], [Z], [T]). */
final class TestImages {

    private TestImages() {
    }

    /** An ImgPlus of {@code imp} laid out as TrackMate's wrapper lays it out; singleton C, Z, T are dropped. */
    static ImgPlus<FloatType> imgPlus(ImagePlus imp) {
        int nC = imp.getNChannels();
        int nZ = imp.getNSlices();
        int nT = imp.getNFrames();
        List<Long> dims = new ArrayList<>();
        List<AxisType> axes = new ArrayList<>();
        List<Double> cal = new ArrayList<>();
        dims.add((long) imp.getWidth());
        axes.add(Axes.X);
        cal.add(imp.getCalibration().pixelWidth);
        dims.add((long) imp.getHeight());
        axes.add(Axes.Y);
        cal.add(imp.getCalibration().pixelHeight);
        if (nC > 1) {
            dims.add((long) nC);
            axes.add(Axes.CHANNEL);
            cal.add(1.0);
        }
        if (nZ > 1) {
            dims.add((long) nZ);
            axes.add(Axes.Z);
            cal.add(imp.getCalibration().pixelDepth);
        }
        if (nT > 1) {
            dims.add((long) nT);
            axes.add(Axes.TIME);
            cal.add(1.0);
        }
        long[] d = dims.stream().mapToLong(Long::longValue).toArray();
        Img<FloatType> img = ArrayImgs.floats(d);
        Cursor<FloatType> cursor = img.localizingCursor();
        long[] pos = new long[d.length];
        while (cursor.hasNext()) {
            cursor.fwd();
            cursor.localize(pos);
            int k = 2;
            int c = nC > 1 ? (int) pos[k++] : 0;
            int z = nZ > 1 ? (int) pos[k++] : 0;
            int t = nT > 1 ? (int) pos[k] : 0;
            ImageProcessor ip = imp.getStack().getProcessor(imp.getStackIndex(c + 1, z + 1, t + 1));
            cursor.get().set(ip.getf((int) pos[0], (int) pos[1]));
        }
        double[] scales = cal.stream().mapToDouble(Double::doubleValue).toArray();
        return new ImgPlus<>(img, imp.getTitle(), axes.toArray(new AxisType[0]), scales);
    }

    /** The interval TrackMate passes to a global detector: X, Y, [Z], [T] (no channel), from min to max inclusive. */
    static Interval interval(ImgPlus<?> img, long x0, long y0, long x1, long y1, long z0, long z1, long t0, long t1) {
        List<long[]> bounds = new ArrayList<>();
        bounds.add(new long[] {x0, x1});
        bounds.add(new long[] {y0, y1});
        if (img.dimensionIndex(Axes.Z) >= 0) {
            bounds.add(new long[] {z0, z1});
        }
        if (img.dimensionIndex(Axes.TIME) >= 0) {
            bounds.add(new long[] {t0, t1});
        }
        long[] min = bounds.stream().mapToLong(b -> b[0]).toArray();
        long[] max = bounds.stream().mapToLong(b -> b[1]).toArray();
        return new FinalInterval(min, max);
    }

    /** The whole image as TrackMate's interval (all of X, Y, Z and T). */
    static Interval whole(ImgPlus<?> img) {
        int z = img.dimensionIndex(Axes.Z);
        int t = img.dimensionIndex(Axes.TIME);
        return interval(img, 0, 0, img.max(0), img.max(1), 0, z < 0 ? 0 : img.max(z), 0, t < 0 ? 0 : img.max(t));
    }

    /** A 16-bit hyperstack of the given size, all zero, calibrated. */
    static ImagePlus blank(int w, int h, int c, int z, int t, double pw, double pd) {
        ImageStack stack = new ImageStack(w, h);
        for (int i = 0; i < c * z * t; i++) {
            stack.addSlice(new ShortProcessor(w, h));
        }
        return hyperstack("blank", stack, c, z, t, pw, pd);
    }

    /**
     * {@code stack} (planes in ImageJ's c, z, t order) as a hyperstack of c x z x t, calibrated in micron: pixel
     * size {@code pw}, Z step {@code pd}, frame interval 1.
     */
    static ImagePlus hyperstack(String title, ImageStack stack, int c, int z, int t, double pw, double pd) {
        ImagePlus imp = new ImagePlus(title, stack);
        imp.setDimensions(c, z, t);
        if (imp.getStackSize() > 1) {
            imp.setOpenAsHyperStack(true);
        }
        imp.getCalibration().pixelWidth = pw;
        imp.getCalibration().pixelHeight = pw;
        imp.getCalibration().pixelDepth = pd;
        imp.getCalibration().frameInterval = 1;
        imp.getCalibration().setUnit("micron");
        return imp;
    }

    /** Fills the box [x0, x1) x [y0, y1) of plane (c, z, t) (all 1-based in ImageJ, 0-based here) with {@code value}. */
    static void box(ImagePlus imp, int c, int z, int t, int x0, int y0, int x1, int y1, int value) {
        ImageProcessor ip = imp.getStack().getProcessor(imp.getStackIndex(c + 1, z + 1, t + 1));
        for (int y = y0; y < y1; y++) {
            for (int x = x0; x < x1; x++) {
                ip.set(x, y, value);
            }
        }
    }

    /** Area of a closed polygon (shoelace formula), in the units of its coordinates. */
    static double polygonArea(double[] x, double[] y) {
        double a = 0;
        for (int i = 0, j = x.length - 1; i < x.length; j = i++) {
            a += x[j] * y[i] - x[i] * y[j];
        }
        return Math.abs(a / 2);
    }

    /** A closed box [x0, x1] x [y0, y1] x [z0, z1] with outward-facing triangles (two per face). */
    static Mesh boxMesh(double x0, double y0, double z0, double x1, double y1, double z1) {
        double[] v = new double[24];
        for (int i = 0; i < 8; i++) {
            v[3 * i] = (i & 1) == 0 ? x0 : x1;
            v[3 * i + 1] = (i & 2) == 0 ? y0 : y1;
            v[3 * i + 2] = (i & 4) == 0 ? z0 : z1;
        }
        int[] t = {
            0, 2, 1, 1, 2, 3, // z0 face, normal -z
            4, 5, 6, 5, 7, 6, // z1 face, +z
            0, 1, 4, 1, 5, 4, // y0 face, -y
            2, 6, 3, 3, 6, 7, // y1 face, +y
            0, 4, 2, 2, 4, 6, // x0 face, -x
            1, 3, 5, 3, 7, 5, // x1 face, +x
        };
        return new Mesh(v, t);
    }

    /** A disc (z NaN) or ball (centre in pixels, radius r pixels) for {@link #plane}. */
    static final class Blob {
        final double x;
        final double y;
        final double z;
        final double r;

        Blob(double x, double y, double z, double r) {
            this.x = x;
            this.y = y;
            this.z = z;
            this.r = r;
        }
    }

    /**
     * Bright blobs (value 1000 inside, anti-aliased edge by 4 x 4 x 4 supersampling) on a background of 100 with
     * Gaussian noise (sigma 15, fixed seed).
     */
    static FloatProcessor plane(int w, int h, List<Blob> blobs, int z, Random noise) {
        FloatProcessor fp = new FloatProcessor(w, h);
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                double cover = 0;
                for (Blob b : blobs) {
                    int in = 0;
                    for (int k = 0; k < 64; k++) {
                        double dx = x + ((k & 3) + 0.5) / 4 - 0.5 - b.x;
                        double dy = y + (((k >> 2) & 3) + 0.5) / 4 - 0.5 - b.y;
                        double dz = Double.isNaN(b.z) ? 0 : z + ((k >> 4) + 0.5) / 4 - 0.5 - b.z;
                        if (dx * dx + dy * dy + dz * dz <= b.r * b.r) {
                            in++;
                        }
                    }
                    cover += in / 64.0;
                }
                fp.setf(x, y, (float) (100 + 900 * Math.min(1, cover) + 15 * noise.nextGaussian()));
            }
        }
        return fp;
    }
}
