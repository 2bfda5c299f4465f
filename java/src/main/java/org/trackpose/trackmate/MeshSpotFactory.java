package org.trackpose.trackmate;

import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotBase;
import fiji.plugin.trackmate.SpotMesh;
import net.imglib2.mesh.impl.nio.BufferMesh;
import org.trackpose.bridge.Mesh;

/**
 * TrackMate 9 adapter: 3D spots with their surface meshes ({@code SpotMesh}, imglib2-mesh's {@code BufferMesh}).
 *
 * <p>This is the only class that names TrackMate 9 types ({@code SpotMesh}, {@code SpotBase}) and imglib2-mesh.
 * {@link SpotMaker} calls it only after {@link SpotMaker#detect} has found those classes (and TrackMate 9's
 * {@code Spot} interface) in the running Fiji, so a TrackMate 8 Fiji never loads it and gets sphere spots instead.
 *
 * <p>The bridge's mesh is in the cropped stack's physical coordinates (ROI offset and calibration applied, Z from
 * the first plane sent); the vertices are handed to {@code SpotMesh} as absolute image coordinates with the Z crop
 * added. {@code SpotMesh} then puts the spot at the mean of the vertices, stores them relative to it and sets the
 * radius from the mesh's volume (TrackMate 9's own rules for mesh spots).
 */
final class MeshSpotFactory {

    private MeshSpotFactory() {
    }

    /** A mesh spot; {@code zOffset} is the physical Z of the first plane sent. */
    static Spot meshSpot(Mesh mesh, double zOffset, double quality) {
        int nv = mesh.nVertices();
        int nt = mesh.nTriangles();
        net.imglib2.mesh.Mesh m = new BufferMesh(nv, nt);
        double[] v = mesh.vertices();
        for (int i = 0; i < nv; i++) {
            m.vertices().add(v[3 * i], v[3 * i + 1], v[3 * i + 2] + zOffset);
        }
        int[] t = mesh.triangles();
        for (int i = 0; i < nt; i++) {
            // zero normals: SpotMesh recomputes them from the vertices
            m.triangles().addf((long) t[3 * i], (long) t[3 * i + 1], (long) t[3 * i + 2], 0f, 0f, 0f);
        }
        return new SpotMesh(m, quality);
    }

    /** A sphere spot as TrackMate 9 makes them (its {@code Spot} is an interface, {@code SpotBase} the class). */
    static Spot sphereSpot(double x, double y, double z, double radius, double quality) {
        return new SpotBase(x, y, z, radius, quality);
    }
}
