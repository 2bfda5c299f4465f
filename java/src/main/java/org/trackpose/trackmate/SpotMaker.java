package org.trackpose.trackmate;

import fiji.plugin.trackmate.Logger;
import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotCollection;
import fiji.plugin.trackmate.SpotRoi;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import org.trackpose.bridge.DetectedObject;
import org.trackpose.bridge.Detections;
import org.trackpose.bridge.Mesh;

/**
 * The engine's objects as TrackMate spots. The bridge has already put every coordinate in the source image's
 * physical units (ROI offset added, calibration applied, TrackMate's pixel-centre convention); this class only
 * translates:
 *
 * <ul>
 * <li>2D: a spot at the object's centroid (from the label image), radius {@code sqrt(area / pi)}, with a
 * {@link SpotRoi} holding the outline (simplified when asked) relative to that centroid;</li>
 * <li>3D with TrackMate 8 (no mesh spots): a spot at the voxel centroid, radius {@code cbrt(3 volume / (4 pi))};</li>
 * <li>3D with TrackMate 9 ({@code SpotMesh} present): a mesh spot made from the engine's surface mesh (position:
 * mean of the vertices, radius from the mesh volume, as TrackMate 9 does); an object without a mesh is TrackMate 9's
 * sphere spot ({@code SpotBase});</li>
 * <li>quality: the engine's, the object's mean cell probability (0..1), so that TrackMate's quality filter removes
 * the least confident objects.</li>
 * </ul>
 *
 * <p>Which API is used is decided once per JVM by looking the TrackMate 9 classes up and logged once per detection
 * run that has 3D objects. TrackMate 9 is unreleased, so this class is compiled against TrackMate 8 only and reaches
 * TrackMate 9's mesh types ({@code SpotMesh}, {@code SpotBase}, imglib2-mesh's {@code BufferMesh}) through
 * reflection ({@link TrackMate9}); a TrackMate 8 Fiji never touches them. The reflective path is tested against the
 * real TrackMate 9 build ({@code ../shared/trackmate9}).
 */
final class SpotMaker {

    /** The spot API of the running TrackMate. */
    enum ShapeApi {
        /** TrackMate 8: {@code Spot} is a class; 3D spots are spheres. */
        TM8_SPHERES("spheres at the voxel centroids (this TrackMate has no mesh spots)"),
        /** TrackMate 9: {@code Spot} is an interface; {@code SpotMesh} carries the surface mesh. */
        TM9_MESHES("TrackMate 9 mesh spots (SpotMesh) from the engine's surface meshes");

        final String description;

        ShapeApi(String description) {
            this.description = description;
        }
    }

    /** Classes whose presence means the TrackMate 9 spot API (and imglib2-mesh) is there. */
    static final String[] TM9_CLASSES = {"fiji.plugin.trackmate.SpotMesh", "fiji.plugin.trackmate.SpotBase",
        "net.imglib2.mesh.impl.nio.BufferMesh"};

    private static volatile ShapeApi forced;

    private SpotMaker() {
    }

    private static final class Detected {
        static final ShapeApi API = detect(name -> {
            try {
                return Class.forName(name, false, SpotMaker.class.getClassLoader());
            } catch (ClassNotFoundException | LinkageError e) {
                return null;
            }
        });
    }

    /**
     * TrackMate 9's API is there when its mesh-spot classes can be found and {@code fiji.plugin.trackmate.Spot} is an
     * interface (TrackMate 9 made it one; TrackMate 8's, and these stubs', is a class that TrackMate 9's code cannot
     * extend). {@code lookup} returns null for a class it cannot find; nothing is initialised.
     */
    static ShapeApi detect(Function<String, Class<?>> lookup) {
        for (String name : TM9_CLASSES) {
            if (lookup.apply(name) == null) {
                return ShapeApi.TM8_SPHERES;
            }
        }
        Class<?> spot = lookup.apply("fiji.plugin.trackmate.Spot");
        return spot != null && spot.isInterface() ? ShapeApi.TM9_MESHES : ShapeApi.TM8_SPHERES;
    }

    /** The API in use: detected once, or forced by a test. */
    static ShapeApi api() {
        ShapeApi f = forced;
        return f != null ? f : Detected.API;
    }

    /** Test seam: use this API instead of the detected one (null: back to detection). */
    static void force(ShapeApi api) {
        forced = api;
    }

    /**
     * @param zOffset physical Z of the first plane sent (TrackMate may crop Z), added to 3D positions
     * @param logger where the 3D spot kind is said (once per call, when there are 3D objects)
     */
    static SpotCollection spots(Detections detections, double zOffset, Logger logger) {
        ShapeApi api = api();
        SpotCollection spots = new SpotCollection();
        boolean said = false;
        for (int frame : detections.frames()) {
            List<Spot> list = new ArrayList<>();
            for (DetectedObject o : detections.objects(frame)) {
                if (o.is3D() && !said) {
                    logger.log("trackpose: 3D spots are " + api.description + ".\n");
                    said = true;
                }
                list.add(spot(o, zOffset, api));
            }
            spots.put(frame, list);
        }
        return spots;
    }

    static Spot spot(DetectedObject o, double zOffset, ShapeApi api) {
        if (o.is3D()) {
            return spot3D(o.x(), o.y(), o.z() + zOffset, o.radius(), o.quality(), o.mesh(), zOffset, api);
        }
        if (api == ShapeApi.TM9_MESHES) {
            // TrackMate 9 replaced the Spot class and SpotRoi's constructor; only its 3D spots are adapted so far
            throw new IllegalStateException("trackpose makes 2D spots with TrackMate 8's API; this Fiji has "
                    + "TrackMate 9, where only 3D detection is supported by this version of the plugin");
        }
        Spot spot = new Spot(o.x(), o.y(), 0, o.radius(), o.quality());
        double[] xs = o.polygonX();
        double[] ys = o.polygonY();
        if (xs != null && ys != null && xs.length >= 3) {
            for (int i = 0; i < xs.length; i++) {
                xs[i] -= o.x();
                ys[i] -= o.y();
            }
            spot.setRoi(new SpotRoi(xs, ys));
        }
        return spot;
    }

    /**
     * A 3D spot: position (x, y, z) already includes the Z crop; the mesh's vertices do not ({@code zOffset} is
     * added to them).
     */
    static Spot spot3D(double x, double y, double z, double radius, double quality, Mesh mesh, double zOffset,
            ShapeApi api) {
        if (api == ShapeApi.TM9_MESHES) {
            TrackMate9 tm9 = TrackMate9.of(SpotMaker.class.getClassLoader());
            return (Spot) (mesh != null && mesh.nTriangles() > 0 ? tm9.meshSpot(mesh, zOffset, quality)
                    : tm9.sphereSpot(x, y, z, radius, quality));
        }
        return new Spot(x, y, z, radius, quality);
    }

    /**
     * TrackMate 9's spot constructors, reached by reflection in the class loader that has them (TrackMate 9 makes
     * {@code Spot} an interface, so no class compiled against TrackMate 8 can name its spot types).
     */
    static final class TrackMate9 {

        private static volatile TrackMate9 cached;

        private final ClassLoader loader;
        private final Constructor<?> bufferMesh;
        private final Method vertices;
        private final Method triangles;
        private final Method addVertex;
        private final Method addTriangle;
        private final Constructor<?> spotMesh;
        private final Constructor<?> spotBase;

        private TrackMate9(ClassLoader loader) throws ReflectiveOperationException {
            this.loader = loader;
            Class<?> meshType = Class.forName("net.imglib2.mesh.Mesh", false, loader);
            Class<?> verticesType = Class.forName("net.imglib2.mesh.Vertices", false, loader);
            Class<?> trianglesType = Class.forName("net.imglib2.mesh.Triangles", false, loader);
            bufferMesh = Class.forName("net.imglib2.mesh.impl.nio.BufferMesh", true, loader)
                    .getConstructor(int.class, int.class);
            vertices = meshType.getMethod("vertices");
            triangles = meshType.getMethod("triangles");
            addVertex = verticesType.getMethod("add", double.class, double.class, double.class);
            addTriangle = trianglesType.getMethod("addf", long.class, long.class, long.class, float.class,
                    float.class, float.class);
            spotMesh = Class.forName("fiji.plugin.trackmate.SpotMesh", true, loader).getConstructor(meshType,
                    double.class);
            spotBase = Class.forName("fiji.plugin.trackmate.SpotBase", true, loader).getConstructor(double.class,
                    double.class, double.class, double.class, double.class);
        }

        /** TrackMate 9's spot API in this class loader; an {@link IllegalStateException} if it is not there. */
        static TrackMate9 of(ClassLoader loader) {
            TrackMate9 t = cached;
            if (t != null && t.loader == loader) {
                return t;
            }
            try {
                t = new TrackMate9(loader);
            } catch (ReflectiveOperationException | LinkageError e) {
                throw new IllegalStateException("TrackMate 9's mesh spot API (SpotMesh, SpotBase, imglib2-mesh) is "
                        + "not usable in this Fiji: " + e, e);
            }
            cached = t;
            return t;
        }

        /**
         * A {@code SpotMesh} from the bridge's mesh; {@code zOffset} (physical Z of the first plane sent) is added
         * to every vertex. SpotMesh puts the spot at the vertex mean and sets the radius from the volume.
         */
        Object meshSpot(Mesh mesh, double zOffset, double quality) {
            int nv = mesh.nVertices();
            int nt = mesh.nTriangles();
            double[] v = mesh.vertices();
            int[] t = mesh.triangles();
            try {
                Object m = bufferMesh.newInstance(nv, nt);
                Object vs = vertices.invoke(m);
                for (int i = 0; i < nv; i++) {
                    addVertex.invoke(vs, v[3 * i], v[3 * i + 1], v[3 * i + 2] + zOffset);
                }
                Object ts = triangles.invoke(m);
                for (int i = 0; i < nt; i++) {
                    // zero normals: SpotMesh recomputes them from the vertices
                    addTriangle.invoke(ts, (long) t[3 * i], (long) t[3 * i + 1], (long) t[3 * i + 2], 0f, 0f, 0f);
                }
                return spotMesh.newInstance(m, quality);
            } catch (InvocationTargetException e) {
                throw new IllegalStateException("TrackMate 9 refused a mesh spot: " + e.getCause(), e.getCause());
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("TrackMate 9's mesh spot API changed: " + e, e);
            }
        }

        /** A sphere spot as TrackMate 9 makes them ({@code SpotBase}: its {@code Spot} is an interface). */
        Object sphereSpot(double x, double y, double z, double radius, double quality) {
            try {
                return spotBase.newInstance(x, y, z, radius, quality);
            } catch (InvocationTargetException e) {
                throw new IllegalStateException("TrackMate 9 refused a sphere spot: " + e.getCause(), e.getCause());
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("TrackMate 9's spot API changed: " + e, e);
            }
        }
    }
}
