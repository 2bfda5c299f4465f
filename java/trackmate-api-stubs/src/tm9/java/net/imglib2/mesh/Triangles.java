package net.imglib2.mesh;

/**
 * API stub (imglib2-mesh 1.1.0, net/imglib2/mesh/Triangles.java): the members the TrackMate 9 adapter and its tests
 * use. A triangle is three vertex indices and a normal; {@code addf} returns the new triangle's index.
 */
public interface Triangles {

    Mesh mesh();

    long sizel();

    long vertex0(long tIndex);

    long vertex1(long tIndex);

    long vertex2(long tIndex);

    long addf(long v0, long v1, long v2, float nx, float ny, float nz);
}
