package net.imglib2.mesh;

/**
 * API stub (imglib2-mesh 1.1.0, net/imglib2/mesh/Vertices.java): the members the TrackMate 9 adapter and its tests
 * use. Positions are stored as floats; {@code add} returns the new vertex's index. (The real interface is also
 * {@code Iterable<Vertex>} and has normals and texture coordinates, which the adapter does not use.)
 */
public interface Vertices {

    Mesh mesh();

    long sizel();

    float xf(long vIndex);

    float yf(long vIndex);

    float zf(long vIndex);

    long addf(float x, float y, float z, float nx, float ny, float nz, float u, float v);

    void setPositionf(long vIndex, float x, float y, float z);

    default long add(final double x, final double y, final double z) {
        return addf((float) x, (float) y, (float) z, 0, 0, 0, 0, 0);
    }

    default double x(final long vIndex) {
        return xf(vIndex);
    }

    default double y(final long vIndex) {
        return yf(vIndex);
    }

    default double z(final long vIndex) {
        return zf(vIndex);
    }
}
