package org.trackpose.bridge;

/**
 * One object the engine found, in the caller's physical coordinates (ROI offset added, calibration applied).
 *
 * <p>Coordinates follow TrackMate's convention: the centre of pixel (column i, row j, plane k) is at
 * {@code (i * pixelWidth, j * pixelHeight, k * pixelDepth)}; polygon vertices lie on pixel corners, half a pixel
 * away. Centroid and size come from the label image; polygon, mesh and quality from shapes.json.
 */
public final class DetectedObject {

    private final int frame;
    private final int label;
    private final double x;
    private final double y;
    private final double z;
    private final long pixelCount;
    private final double size;
    private final double radius;
    private final double quality;
    private final double[] polygonX;
    private final double[] polygonY;
    private final Mesh mesh;
    private final boolean is3D;

    DetectedObject(int frame, int label, double x, double y, double z, long pixelCount, double size, double radius,
            double quality, double[] polygonX, double[] polygonY, Mesh mesh, boolean is3D) {
        this.frame = frame;
        this.label = label;
        this.x = x;
        this.y = y;
        this.z = z;
        this.pixelCount = pixelCount;
        this.size = size;
        this.radius = radius;
        this.quality = quality;
        this.polygonX = polygonX;
        this.polygonY = polygonY;
        this.mesh = mesh;
        this.is3D = is3D;
    }

    /** The caller's frame number. */
    public int frame() {
        return frame;
    }

    /** The label id in labels.tif for this frame. */
    public int label() {
        return label;
    }

    public double x() {
        return x;
    }

    public double y() {
        return y;
    }

    /** 0 for 2D objects. */
    public double z() {
        return z;
    }

    public boolean is3D() {
        return is3D;
    }

    /** Pixels (2D) or voxels (3D) in the object. */
    public long pixelCount() {
        return pixelCount;
    }

    /** Area (2D, unit^2) or volume (3D, unit^3) in physical units. */
    public double size() {
        return size;
    }

    /** Radius of the disc (2D) or ball (3D) of the same size: sqrt(area / pi) or cbrt(3 volume / (4 pi)). */
    public double radius() {
        return radius;
    }

    /** The engine's quality: mean cell probability, 0..1. */
    public double quality() {
        return quality;
    }

    /** Polygon x coordinates in physical units, counter-clockwise; null for 3D objects. A copy. */
    public double[] polygonX() {
        return polygonX == null ? null : polygonX.clone();
    }

    /** Polygon y coordinates in physical units; null for 3D objects. A copy. */
    public double[] polygonY() {
        return polygonY == null ? null : polygonY.clone();
    }

    /** The surface mesh in physical units, or null (2D, or meshes not asked for / not written). */
    public Mesh mesh() {
        return mesh;
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "DetectedObject[frame=%d, label=%d, x=%.4g, y=%.4g, z=%.4g, "
                + "size=%.4g, radius=%.4g, quality=%.3f%s]", frame, label, x, y, z, size, radius, quality,
                polygonX == null ? "" : ", " + polygonX.length + " vertices");
    }
}
