package net.imglib2.mesh;

/**
 * API stub (imglib2-mesh 1.1.0, net/imglib2/mesh/Mesh.java; the mesh type TrackMate 9's {@code SpotMesh} takes): a
 * triangle mesh made of a vertex table and a triangle table.
 */
public interface Mesh {

    Vertices vertices();

    Triangles triangles();
}
