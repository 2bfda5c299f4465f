package fiji.plugin.trackmate;

import net.imglib2.mesh.Mesh;
import net.imglib2.mesh.Triangles;
import net.imglib2.mesh.Vertices;
import net.imglib2.mesh.impl.nio.BufferMesh;

/**
 * API stub (TrackMate 9, branch {@code v9} at 9bdb066 of 2025-10-27, fiji/plugin/trackmate/SpotMesh.java; absent
 * from TrackMate 8): a 3D spot with a surface mesh. The constructors and the accessor the adapter and its tests use.
 *
 * <p>Documented behaviour of the real class, which this stub reproduces for the tests: the constructor takes a mesh
 * with vertices in <b>physical</b> image coordinates, copies it into a {@link BufferMesh}, puts the spot at the mean
 * of the vertices, stores the vertices relative to that centre (so a vertex's image position is the spot position
 * plus the stored vertex) and sets RADIUS to the radius of the ball with the mesh's volume. (The real class also
 * computes normals, a bounding box and a Z-slice cache, which the adapter does not use.)
 */
public class SpotMesh extends SpotBase {

    private BufferMesh mesh;

    public SpotMesh(final Mesh mesh, final double quality) {
        this(mesh, quality, null);
    }

    public SpotMesh(final Mesh m, final double quality, final String name) {
        super(0., 0., 0., 0., quality, name);
        setMesh(m);
    }

    public void setMesh(final Mesh m) {
        Vertices v = m.vertices();
        Triangles t = m.triangles();
        int nv = (int) v.sizel();
        int nt = (int) t.sizel();
        BufferMesh copy = new BufferMesh(nv, nt);
        double cx = 0;
        double cy = 0;
        double cz = 0;
        for (long i = 0; i < nv; i++) {
            cx += v.x(i);
            cy += v.y(i);
            cz += v.z(i);
        }
        cx /= nv;
        cy /= nv;
        cz /= nv;
        for (long i = 0; i < nv; i++) {
            copy.vertices().add(v.x(i) - cx, v.y(i) - cy, v.z(i) - cz);
        }
        for (long i = 0; i < nt; i++) {
            copy.triangles().addf(t.vertex0(i), t.vertex1(i), t.vertex2(i), 0f, 0f, 0f);
        }
        this.mesh = copy;
        putFeature(POSITION_X, cx);
        putFeature(POSITION_Y, cy);
        putFeature(POSITION_Z, cz);
        putFeature(RADIUS, Math.cbrt(3 * Math.abs(volume(copy)) / (4 * Math.PI)));
    }

    /** The mesh, vertices relative to the spot's position (physical units). */
    public BufferMesh getMesh() {
        return mesh;
    }

    /** Signed volume enclosed by a closed, consistently oriented mesh (divergence theorem). */
    private static double volume(final Mesh m) {
        Vertices v = m.vertices();
        Triangles t = m.triangles();
        double sum = 0;
        for (long i = 0; i < t.sizel(); i++) {
            long a = t.vertex0(i);
            long b = t.vertex1(i);
            long c = t.vertex2(i);
            sum += v.x(a) * (v.y(b) * v.z(c) - v.z(b) * v.y(c))
                    - v.y(a) * (v.x(b) * v.z(c) - v.z(b) * v.x(c))
                    + v.z(a) * (v.x(b) * v.y(c) - v.y(b) * v.x(c));
        }
        return sum / 6;
    }
}
