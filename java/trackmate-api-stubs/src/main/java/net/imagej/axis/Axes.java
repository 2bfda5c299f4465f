package net.imagej.axis;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * API stub (imagej-common 2.1.1, net/imagej/axis/Axes.java; not on Maven Central): the axis types TrackMate images
 * carry. Types are unique per label, so they compare with {@code ==}.
 */
public final class Axes {

    private static final Map<String, AxisType> TYPES = new ConcurrentHashMap<>();

    public static final AxisType X = get("X", true);
    public static final AxisType Y = get("Y", true);
    public static final AxisType Z = get("Z", true);
    public static final AxisType TIME = get("Time");
    public static final AxisType CHANNEL = get("Channel");

    private Axes() {
    }

    public static AxisType get(final String label) {
        return get(label, false);
    }

    public static AxisType get(final String label, final boolean spatial) {
        return TYPES.computeIfAbsent(label, l -> new AxisType() {
            @Override
            public String getLabel() {
                return l;
            }

            @Override
            public boolean isXY() {
                return l.equals("X") || l.equals("Y");
            }

            @Override
            public boolean isSpatial() {
                return spatial;
            }

            @Override
            public String toString() {
                return l;
            }
        });
    }
}
