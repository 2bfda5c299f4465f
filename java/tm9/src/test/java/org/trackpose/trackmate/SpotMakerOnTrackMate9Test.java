package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;

import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotBase;
import fiji.plugin.trackmate.SpotMesh;
import fiji.plugin.trackmate.SpotRoi;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import net.imglib2.mesh.Triangles;
import net.imglib2.mesh.Vertices;
import org.junit.jupiter.api.Test;
import org.trackpose.bridge.Mesh;

/**
 * {@link SpotMaker} (compiled against TrackMate 8, from the plugin jar) with TrackMate 9 on the class path: the API
 * it detects, and the spots it makes through TrackMate 9's own constructors (mesh spots with every vertex where the
 * engine put it, outline spots, sphere spots).
 */
class SpotMakerOnTrackMate9Test {

    @Test
    void theTrackMateOnThisClassPathIsTheSharedTrackMate9Build() throws Exception {
        String shared = System.getProperty("trackpose.trackmate9.jar");
        assertNotNull(shared, "the pom names TrackMate 9's test build (trackpose.trackmate9.jar)");
        Path expected = Paths.get(shared);
        assertTrue(Files.isRegularFile(expected), "TrackMate 9's test build is missing: " + expected
                + " (see ../shared/trackmate9/README.md)");
        Path loaded = Paths.get(Spot.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        assertArrayEquals(sha256(expected), sha256(loaded), "the TrackMate jar on the class path (" + loaded
                + ") is not the one in " + expected + ": a stale copy in ~/.m2? (remove "
                + "~/.m2/repository/sc/fiji/TrackMate/9.0.0-tmbuild and ~/.m2/repository/tm9build)");
    }

    private static byte[] sha256(Path file) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file));
    }

    @Test
    void trackMate9IsDetectedOnThisClassPath() {
        assertTrue(Spot.class.isInterface(), "TrackMate 9's Spot is an interface");
        assertEquals(SpotMaker.ShapeApi.TM9_MESHES, SpotMaker.api());
    }

    @Test
    void aMeshSpotKeepsEveryVertexWhereTheEngineSaidWithTheZCropAdded() {
        Mesh mesh = TestImages.boxMesh(1.0, 2.0, 0.5, 4.0, 3.5, 2.5);
        double zOffset = 3.0;
        Spot made = SpotMaker.spot3D(2.5, 2.75, 4.5, 1.0, 0.75, mesh, zOffset, SpotMaker.api());
        SpotMesh spot = assertInstanceOf(SpotMesh.class, made);
        Vertices v = spot.getMesh().vertices();
        Triangles t = spot.getMesh().triangles();
        assertEquals(8L, v.sizel());
        assertEquals(12L, t.sizel());
        double sx = spot.getFeature(Spot.POSITION_X);
        double sy = spot.getFeature(Spot.POSITION_Y);
        double sz = spot.getFeature(Spot.POSITION_Z);
        // TrackMate 9 puts a mesh spot at the centre of its mesh: the box's centre
        assertEquals(2.5, sx, 1e-6);
        assertEquals(2.75, sy, 1e-6);
        assertEquals(1.5 + zOffset, sz, 1e-6);
        double[] expected = mesh.vertices();
        for (int i = 0; i < 8; i++) { // stored relative to the spot's position
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
        assertEquals(volume, spot.volume(), 1e-6, "TrackMate 9's volume of the box");
        assertEquals(Math.cbrt(3 * volume / (4 * Math.PI)), spot.getFeature(Spot.RADIUS), 1e-5,
                "radius from the mesh volume (outward triangles)");
    }

    @Test
    void a3DObjectWithoutAMeshIsTrackMate9sSphereSpot() {
        Spot spot = SpotMaker.spot3D(1, 2, 3, 0.5, 0.25, null, 0, SpotMaker.api());
        assertEquals(SpotBase.class, spot.getClass());
        assertEquals(1.0, spot.getFeature(Spot.POSITION_X), 0);
        assertEquals(3.0, spot.getFeature(Spot.POSITION_Z), 0);
        assertEquals(0.5, spot.getFeature(Spot.RADIUS), 0);
        assertEquals(0.25, spot.getFeature(Spot.QUALITY), 0);
    }

    @Test
    void a2DSpotIsTrackMate9sOutlineSpotWithTheOutlineRelativeToItsCentre() {
        double[] xs = {1.0, 1.0, 4.0, 4.0};
        double[] ys = {2.0, 5.0, 5.0, 2.0};
        SpotRoi spot = assertInstanceOf(SpotRoi.class, SpotMaker.TrackMate9.of(SpotMaker.class.getClassLoader())
                .roiSpot(2.5, 3.5, Math.sqrt(9 / Math.PI), 0.5, new double[] {-1.5, -1.5, 1.5, 1.5},
                        new double[] {-1.5, 1.5, 1.5, -1.5}));
        assertEquals(4, spot.nPoints());
        for (int i = 0; i < 4; i++) {
            assertEquals(xs[i], spot.x(i), 1e-12);
            assertEquals(ys[i], spot.y(i), 1e-12);
        }
        assertEquals(9.0, spot.area(), 1e-12);
        assertEquals(0.0, spot.getFeature(Spot.POSITION_Z), 0);
        assertEquals(0.5, spot.getFeature(Spot.QUALITY), 0);
    }
}
