package fiji.plugin.trackmate;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import net.imglib2.AbstractEuclideanSpace;
import net.imglib2.RealLocalizable;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/Spot.java): the constructors, feature keys and accessors the
 * adapter and its tests use. A spot is a 3D point with a feature map; positions are the POSITION_* features.
 */
public class Spot extends AbstractEuclideanSpace implements RealLocalizable, Comparable<Spot> {

    public static AtomicInteger IDcounter = new AtomicInteger(-1);

    public static final String QUALITY = "QUALITY";
    public static final String RADIUS = "RADIUS";
    public static final String POSITION_X = "POSITION_X";
    public static final String POSITION_Y = "POSITION_Y";
    public static final String POSITION_Z = "POSITION_Z";
    public static final String POSITION_T = "POSITION_T";
    public static final String FRAME = "FRAME";
    public static final String[] POSITION_FEATURES = new String[] {POSITION_X, POSITION_Y, POSITION_Z};

    private final Map<String, Double> features = new ConcurrentHashMap<>();
    private final int id;
    private String name;
    private SpotRoi roi;

    public Spot(final double x, final double y, final double z, final double radius, final double quality,
            final String name) {
        super(3);
        this.id = IDcounter.incrementAndGet();
        this.name = name == null ? "ID" + id : name;
        putFeature(POSITION_X, x);
        putFeature(POSITION_Y, y);
        putFeature(POSITION_Z, z);
        putFeature(RADIUS, radius);
        putFeature(QUALITY, quality);
    }

    public Spot(final double x, final double y, final double z, final double radius, final double quality) {
        this(x, y, z, radius, quality, null);
    }

    public void setRoi(final SpotRoi roi) {
        this.roi = roi;
    }

    public SpotRoi getRoi() {
        return roi;
    }

    public String getName() {
        return name;
    }

    public void setName(final String name) {
        this.name = name;
    }

    public int ID() {
        return id;
    }

    public Map<String, Double> getFeatures() {
        return features;
    }

    public Double getFeature(final String feature) {
        return features.get(feature);
    }

    public void putFeature(final String feature, final Double value) {
        features.put(feature, value);
    }

    @Override
    public double getDoublePosition(final int d) {
        return getFeature(POSITION_FEATURES[d]);
    }

    @Override
    public int compareTo(final Spot o) {
        return Integer.compare(id, o.id);
    }

    @Override
    public String toString() {
        return name + " " + features;
    }
}
