package net.imagej;

import net.imagej.axis.AxisType;
import net.imglib2.Cursor;
import net.imglib2.Interval;
import net.imglib2.RandomAccess;
import net.imglib2.img.Img;
import net.imglib2.img.ImgFactory;

/**
 * API stub (imagej-common 2.1.1, net/imagej/ImgPlus.java; not on Maven Central): an {@link Img} with a name and, per
 * dimension, an axis type and a scale (the physical size of one pixel step). The members are those the adapter and
 * its tests use; in imagej-common {@code dimensionIndex} and {@code averageScale} come from the TypedSpace and
 * CalibratedSpace interfaces.
 */
public class ImgPlus<T> implements Img<T> {

    private final Img<T> img;
    private final String name;
    private final AxisType[] axisTypes;
    private final double[] scales;

    public ImgPlus(final Img<T> img, final String name, final AxisType[] axisTypes, final double[] cal) {
        if (axisTypes.length != img.numDimensions() || cal.length != img.numDimensions()) {
            throw new IllegalArgumentException("one axis type and one scale per dimension");
        }
        this.img = img;
        this.name = name;
        this.axisTypes = axisTypes.clone();
        this.scales = cal.clone();
    }

    public Img<T> getImg() {
        return img;
    }

    public String getName() {
        return name;
    }

    /** The dimension holding this axis type, or -1. */
    public int dimensionIndex(final AxisType axis) {
        for (int d = 0; d < axisTypes.length; d++) {
            if (axisTypes[d] == axis) {
                return d;
            }
        }
        return -1;
    }

    /** The physical size of one step along dimension d. */
    public double averageScale(final int d) {
        return scales[d];
    }

    // ---- Img, by delegation

    @Override
    public int numDimensions() {
        return img.numDimensions();
    }

    @Override
    public long min(final int d) {
        return img.min(d);
    }

    @Override
    public long max(final int d) {
        return img.max(d);
    }

    @Override
    public RandomAccess<T> randomAccess() {
        return img.randomAccess();
    }

    @Override
    public RandomAccess<T> randomAccess(final Interval interval) {
        return img.randomAccess(interval);
    }

    @Override
    public Cursor<T> cursor() {
        return img.cursor();
    }

    @Override
    public Cursor<T> localizingCursor() {
        return img.localizingCursor();
    }

    @Override
    public long size() {
        return img.size();
    }

    @Override
    public Object iterationOrder() {
        return img.iterationOrder();
    }

    @Override
    public T getType() {
        return img.getType();
    }

    @Override
    public ImgFactory<T> factory() {
        return img.factory();
    }

    @Override
    public ImgPlus<T> copy() {
        return new ImgPlus<>(img.copy(), name, axisTypes, scales);
    }
}
