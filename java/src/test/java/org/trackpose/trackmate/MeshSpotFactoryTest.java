package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;

import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotBase;
import fiji.plugin.trackmate.SpotMesh;
import java.util.HashMap;
import java.util.Map;
import net.imglib2.mesh.Triangles;
import net.imglib2.mesh.Vertices;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.trackpose.bridge.Mesh;

/**
 * The TrackMate 9 mesh-spot adapter against the stubs' SpotMesh (which behaves as TrackMate 9 documents: absolute
 * physical vertices in, spot at the vertex mean, vertices stored relative to it, radius from the volume), and the
 * choice between it and TrackMate 8's sphere spots.
 */
class MeshSpotFactoryTest {

    @AfterEach
    void backToDetection() {
        SpotMaker.force(null);
    }

    /** A closed box [x0, x1] x [y0, y1] x [z0, z1] with outward-facing triangles (two per face). */
    static Mesh box(double x0, double y0, double z0, double x1, double y1, double z1) {
        double[] v = new double[24];
        for (int i = 0; i < 8; i++) {
            v[3 * i] = (i & 1) == 0 ? x0 : x1;
            v[3 * i + 1] = (i & 2) == 0 ? y0 : y1;
            v[3 * i + 2] = (i & 4) == 0 ? z0 : z1;
        }
        int[] t = {
            0, 2, 1, 1, 2, 3, // z0 face, normal -z
            4, 5, 6, 5, 7, 6, // z1 face, +z
            0, 1, 4, 1, 5, 4, // y0 face, -y
            2, 6, 3, 3, 6, 7, // y1 face, +y
            0, 4, 2, 2, 4, 6, // x0 face, -x
            1, 3, 5, 3, 7, 5, // x1 face, +x
        };
        return new Mesh(v, t);
    }

    @Test
    void aMeshSpotKeepsEveryVertexWhereTheEngineSaidWithTheZCropAdded() {
        Mesh mesh = box(1.0, 2.0, 0.5, 4.0, 3.5, 2.5);
        double zOffset = 3.0;
        Spot spot = SpotMaker.spot3D(2.5, 2.75, 1.5 + zOffset, 9.9, 0.75, mesh, zOffset, SpotMaker.ShapeApi.TM9_MESHES);
        assertTrue(spot instanceof SpotMesh, spot.getClass().getName());
        net.imglib2.mesh.Mesh m = ((SpotMesh) spot).getMesh();
        Vertices v = m.vertices();
        Triangles t = m.triangles();
        assertEquals(8, v.sizel());
        assertEquals(12, t.sizel());
        double sx = spot.getFeature(Spot.POSITION_X);
        double sy = spot.getFeature(Spot.POSITION_Y);
        double sz = spot.getFeature(Spot.POSITION_Z);
        // the box's vertex mean is its centre
        assertEquals(2.5, sx, 1e-6);
        assertEquals(2.75, sy, 1e-6);
        assertEquals(1.5 + zOffset, sz, 1e-6);
        double[] expected = mesh.vertices();
        for (int i = 0; i < 8; i++) {
            assertEquals(expected[3 * i], sx + v.x(i), 1e-5, "vertex " + i + " x");
            assertEquals(expected[3 * i + 1], sy + v.y(i), 1e-5, "vertex " + i + " y");
            assertEquals(expected[3 * i + 2] + zOffset, sz + v.z(i), 1e-5, "vertex " + i + " z");
        }
        int[] tri = mesh.triangles();
        for (int i = 0; i < 12; i++) {
            assertEquals(tri[3 * i], t.vertex0(i));
            assertEquals(tri[3 * i + 1], t.vertex1(i));
            assertEquals(tri[3 * i + 2], t.vertex2(i));
        }
        assertEquals(0.75, spot.getFeature(Spot.QUALITY), 0);
        double volume = 3.0 * 1.5 * 2.0;
        assertEquals(Math.cbrt(3 * volume / (4 * Math.PI)), spot.getFeature(Spot.RADIUS), 1e-5,
                "radius from the mesh volume (outward triangles)");
    }

    @Test
    void trackMate8GetsASphereEvenWhenTheEngineWroteAMesh() {
        Spot spot = SpotMaker.spot3D(2.5, 2.75, 4.5, 1.25, 0.5, box(0, 0, 0, 1, 1, 1), 3.0,
                SpotMaker.ShapeApi.TM8_SPHERES);
        assertFalse(spot instanceof SpotBase, "a TrackMate 8 spot, not a TrackMate 9 class: " + spot.getClass());
        assertEquals(2.5, spot.getFeature(Spot.POSITION_X), 0);
        assertEquals(2.75, spot.getFeature(Spot.POSITION_Y), 0);
        assertEquals(4.5, spot.getFeature(Spot.POSITION_Z), 0);
        assertEquals(1.25, spot.getFeature(Spot.RADIUS), 0);
        assertNull(spot.getRoi());
    }

    @Test
    void trackMate9WithoutAMeshGetsItsOwnSphereSpot() {
        Spot spot = SpotMaker.spot3D(1, 2, 3, 0.5, 0.25, null, 0, SpotMaker.ShapeApi.TM9_MESHES);
        assertTrue(spot instanceof SpotBase && !(spot instanceof SpotMesh), spot.getClass().getName());
        assertEquals(3.0, spot.getFeature(Spot.POSITION_Z), 0);
        assertEquals(0.5, spot.getFeature(Spot.RADIUS), 0);
    }

    /** A class lookup over a fixed table (null = not found), standing in for a Fiji's class loader. */
    private static java.util.function.Function<String, Class<?>> fiji(Map<String, Class<?>> classes) {
        return classes::get;
    }

    @Test
    void theTrackMate9PathIsChosenOnlyWhenItsClassesAreThere() {
        Map<String, Class<?>> tm9 = new HashMap<>();
        tm9.put("fiji.plugin.trackmate.SpotMesh", Object.class);
        tm9.put("fiji.plugin.trackmate.SpotBase", Object.class);
        tm9.put("net.imglib2.mesh.impl.nio.BufferMesh", Object.class);
        tm9.put("fiji.plugin.trackmate.Spot", Runnable.class); // an interface, as in TrackMate 9
        assertEquals(SpotMaker.ShapeApi.TM9_MESHES, SpotMaker.detect(fiji(tm9)));
        for (String missing : SpotMaker.TM9_CLASSES) {
            Map<String, Class<?>> partial = new HashMap<>(tm9);
            partial.remove(missing);
            assertEquals(SpotMaker.ShapeApi.TM8_SPHERES, SpotMaker.detect(fiji(partial)), "without " + missing);
        }
        Map<String, Class<?>> tm8 = new HashMap<>();
        tm8.put("fiji.plugin.trackmate.Spot", Spot.class);
        assertEquals(SpotMaker.ShapeApi.TM8_SPHERES, SpotMaker.detect(fiji(tm8)), "TrackMate 8: no SpotMesh");
        // these stubs hold TrackMate 9's classes only to compile the adapter; their Spot is TrackMate 8's class
        assertEquals(SpotMaker.ShapeApi.TM8_SPHERES, SpotMaker.api());
        SpotMaker.force(SpotMaker.ShapeApi.TM9_MESHES);
        assertEquals(SpotMaker.ShapeApi.TM9_MESHES, SpotMaker.api());
    }
}
