package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;

import fiji.plugin.trackmate.Spot;
import java.io.IOException;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.trackpose.bridge.Mesh;

/**
 * Spot making: TrackMate 8 spheres (the real TrackMate 8.1.6 on the class path) and TrackMate 9 mesh spots, through
 * {@link SpotMaker.TrackMate9}'s reflection, against <b>the real TrackMate 9 build</b> ({@code ../shared/trackmate9},
 * loaded child-first in its own class loader, since TrackMate 8 and 9 cannot share one class path); and the choice
 * between the two APIs.
 */
class SpotMakerTest {

    private static URLClassLoader tm9;

    /**
     * A class loader that finds TrackMate 9 and imglib2-mesh first, everything else (imglib2, ImageJ, ...) in the
     * test class path.
     */
    private static final class ChildFirst extends URLClassLoader {
        ChildFirst(URL[] urls, ClassLoader parent) {
            super(urls, parent);
        }

        @Override
        protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
            synchronized (getClassLoadingLock(name)) {
                Class<?> c = findLoadedClass(name);
                if (c == null && (name.startsWith("fiji.plugin.trackmate.") || name.startsWith("net.imglib2.mesh."))) {
                    try {
                        c = findClass(name);
                    } catch (ClassNotFoundException e) {
                        c = null;
                    }
                }
                if (c == null) {
                    c = super.loadClass(name, false);
                }
                if (resolve) {
                    resolveClass(c);
                }
                return c;
            }
        }
    }

    @BeforeAll
    static void loadTrackMate9() throws IOException {
        String m2 = System.getProperty("trackpose.trackmate9.m2");
        assertNotNull(m2, "system property trackpose.trackmate9.m2 (set by the pom) names TrackMate 9's test build");
        Path root = Paths.get(m2);
        Path trackmate = root.resolve("sc/fiji/TrackMate/9.0.0-tmbuild/TrackMate-9.0.0-tmbuild.jar");
        Path mesh = root.resolve("tm9build/subset/imglib2-mesh/1.1.0/imglib2-mesh-1.1.0.jar");
        for (Path p : new Path[] {trackmate, mesh}) {
            assertTrue(Files.isRegularFile(p), "TrackMate 9's test build is needed here (../shared/trackmate9): " + p);
        }
        List<URL> urls = new ArrayList<>();
        for (Path p : new Path[] {trackmate, mesh}) {
            urls.add(p.toUri().toURL());
        }
        tm9 = new ChildFirst(urls.toArray(new URL[0]), SpotMakerTest.class.getClassLoader());
    }

    @AfterAll
    static void close() throws IOException {
        if (tm9 != null) {
            tm9.close();
        }
    }

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

    private static Object call(Object target, String method, Object... args) {
        try {
            for (Method m : target.getClass().getMethods()) {
                if (m.getName().equals(method) && m.getParameterCount() == args.length) {
                    return m.invoke(target, args);
                }
            }
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(method + " on " + target.getClass().getName(), e);
        }
        throw new AssertionError("no " + method + " on " + target.getClass().getName());
    }

    private static double feature(Object spot, String name) {
        return (Double) call(spot, "getFeature", name);
    }

    @Test
    void aTrackMate9MeshSpotKeepsEveryVertexWhereTheEngineSaidWithTheZCropAdded() throws Exception {
        Mesh mesh = box(1.0, 2.0, 0.5, 4.0, 3.5, 2.5);
        double zOffset = 3.0;
        Object spot = SpotMaker.TrackMate9.of(tm9).meshSpot(mesh, zOffset, 0.75);
        assertEquals("fiji.plugin.trackmate.SpotMesh", spot.getClass().getName());
        assertSame(tm9, spot.getClass().getClassLoader(), "TrackMate 9's own class");
        assertTrue(tm9.loadClass("fiji.plugin.trackmate.Spot").isInterface(), "TrackMate 9: Spot is an interface");
        Object m = call(spot, "getMesh");
        Object v = call(m, "vertices");
        Object t = call(m, "triangles");
        assertEquals(8L, call(v, "sizel"));
        assertEquals(12L, call(t, "sizel"));
        double sx = feature(spot, Spot.POSITION_X);
        double sy = feature(spot, Spot.POSITION_Y);
        double sz = feature(spot, Spot.POSITION_Z);
        // TrackMate 9 puts a mesh spot at its vertex mean: the box's centre
        assertEquals(2.5, sx, 1e-6);
        assertEquals(2.75, sy, 1e-6);
        assertEquals(1.5 + zOffset, sz, 1e-6);
        double[] expected = mesh.vertices();
        for (int i = 0; i < 8; i++) {
            long li = i;
            assertEquals(expected[3 * i], sx + (Double) call(v, "x", li), 1e-5, "vertex " + i + " x");
            assertEquals(expected[3 * i + 1], sy + (Double) call(v, "y", li), 1e-5, "vertex " + i + " y");
            assertEquals(expected[3 * i + 2] + zOffset, sz + (Double) call(v, "z", li), 1e-5, "vertex " + i + " z");
        }
        int[] tri = mesh.triangles();
        for (int i = 0; i < 12; i++) {
            long li = i;
            assertEquals((long) tri[3 * i], call(t, "vertex0", li));
            assertEquals((long) tri[3 * i + 1], call(t, "vertex1", li));
            assertEquals((long) tri[3 * i + 2], call(t, "vertex2", li));
        }
        assertEquals(0.75, feature(spot, Spot.QUALITY), 0);
        double volume = 3.0 * 1.5 * 2.0;
        assertEquals(volume, (Double) call(spot, "volume"), 1e-6, "TrackMate 9's volume of the box");
        assertEquals(Math.cbrt(3 * volume / (4 * Math.PI)), feature(spot, Spot.RADIUS), 1e-5,
                "radius from the mesh volume (outward triangles)");
    }

    @Test
    void trackMate9WithoutAMeshGetsItsOwnSphereSpot() throws Exception {
        Object spot = SpotMaker.TrackMate9.of(tm9).sphereSpot(1, 2, 3, 0.5, 0.25);
        assertEquals("fiji.plugin.trackmate.SpotBase", spot.getClass().getName());
        assertTrue(tm9.loadClass("fiji.plugin.trackmate.Spot").isInstance(spot));
        assertEquals(3.0, feature(spot, Spot.POSITION_Z), 0);
        assertEquals(0.5, feature(spot, Spot.RADIUS), 0);
        assertEquals(0.25, feature(spot, Spot.QUALITY), 0);
    }

    @Test
    void trackMate8GetsASphereEvenWhenTheEngineWroteAMesh() {
        Spot spot = SpotMaker.spot3D(2.5, 2.75, 4.5, 1.25, 0.5, box(0, 0, 0, 1, 1, 1), 3.0,
                SpotMaker.ShapeApi.TM8_SPHERES);
        assertEquals(Spot.class, spot.getClass(), "TrackMate 8's Spot class");
        assertEquals(2.5, spot.getFeature(Spot.POSITION_X), 0);
        assertEquals(2.75, spot.getFeature(Spot.POSITION_Y), 0);
        assertEquals(4.5, spot.getFeature(Spot.POSITION_Z), 0);
        assertEquals(1.25, spot.getFeature(Spot.RADIUS), 0);
        assertNull(spot.getRoi());
    }

    @Test
    void theTrackMate9PathInATrackMate8FijiSaysWhatIsMissing() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> SpotMaker.spot3D(1, 2, 3, 1, 1,
                box(0, 0, 0, 1, 1, 1), 0, SpotMaker.ShapeApi.TM9_MESHES));
        assertTrue(e.getMessage().contains("TrackMate 9's mesh spot API"), e.getMessage());
    }

    /** A class lookup over a fixed table (null = not found), standing in for a Fiji's class loader. */
    private static java.util.function.Function<String, Class<?>> fiji(Map<String, Class<?>> classes) {
        return classes::get;
    }

    @Test
    void theTrackMate9PathIsChosenOnlyWhenItsClassesAreThere() throws Exception {
        Map<String, Class<?>> tm9Classes = new HashMap<>();
        for (String name : SpotMaker.TM9_CLASSES) {
            tm9Classes.put(name, tm9.loadClass(name));
        }
        tm9Classes.put("fiji.plugin.trackmate.Spot", tm9.loadClass("fiji.plugin.trackmate.Spot"));
        assertEquals(SpotMaker.ShapeApi.TM9_MESHES, SpotMaker.detect(fiji(tm9Classes)));
        assertEquals(SpotMaker.ShapeApi.TM9_MESHES, SpotMaker.detect(name -> {
            try {
                return Class.forName(name, false, tm9);
            } catch (ClassNotFoundException e) {
                return null;
            }
        }), "the real TrackMate 9 class loader");
        for (String missing : SpotMaker.TM9_CLASSES) {
            Map<String, Class<?>> partial = new HashMap<>(tm9Classes);
            partial.remove(missing);
            assertEquals(SpotMaker.ShapeApi.TM8_SPHERES, SpotMaker.detect(fiji(partial)), "without " + missing);
        }
        // the test class path holds the real TrackMate 8.1.6: no SpotMesh, Spot is a class
        assertEquals(SpotMaker.ShapeApi.TM8_SPHERES, SpotMaker.api());
        SpotMaker.force(SpotMaker.ShapeApi.TM9_MESHES);
        assertEquals(SpotMaker.ShapeApi.TM9_MESHES, SpotMaker.api());
    }
}
