package net.imagej.axis;

/** API stub (imagej-common 2.1.1, net/imagej/axis/AxisType.java; not on Maven Central): signatures only. */
public interface AxisType {

    String getLabel();

    boolean isXY();

    boolean isSpatial();
}
