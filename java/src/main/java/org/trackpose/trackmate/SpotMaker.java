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
 * The engine's objects as TrackMate spots, on TrackMate 8 and on TrackMate 9. The bridge has already put every
 * coordinate in the source image's physical units (ROI offset added, calibration applied, TrackMate's pixel-centre
 * convention); this class only translates:
 *
 * <ul>
 * <li>2D: a spot at the object's centroid (from the label image), radius {@code sqrt(area / pi)}, with its outline
 * (simplified when asked) relative to that centroid as the spot's ROI: TrackMate 8's {@code Spot} +
 * {@code SpotRoi}, TrackMate 9's {@code SpotRoi} spot;</li>
 * <li>3D with TrackMate 8 (no mesh spots): a spot at the voxel centroid, radius {@code cbrt(3 volume / (4 pi))};</li>
 * <li>3D with TrackMate 9: a {@code SpotMesh} made from the engine's surface mesh (position: centre of the mesh,
 * radius from the mesh volume, as TrackMate 9 computes them); an object without a mesh is TrackMate 9's sphere spot
 * ({@code SpotBase});</li>
 * <li>quality: the engine's, the object's mean cell probability (0..1), so that TrackMate's quality filter removes
 * the least confident objects.</li>
 * </ul>
 *
 * <p><b>One jar for both versions.</b> The plugin is compiled against TrackMate 8 only (TrackMate 9 is not
 * released). TrackMate 9 made {@code Spot} an interface and replaced {@code SpotRoi}'s constructor, so the only
 * TrackMate 8-specific bytecode, the spot constructors, sits in {@link TrackMate8} (loaded only on TrackMate 8), and
 * TrackMate 9's spot constructors ({@code SpotBase}, {@code SpotRoi}, {@code SpotMesh}, imglib2-mesh's
 * {@code BufferMesh}) are reached by reflection in {@link TrackMate9}. Nothing else in the plugin differs between the
 * two: its other references to TrackMate compile to the same bytecode against both. Which API is used is decided
 * once per JVM by looking the TrackMate 9 classes up, and logged once per detection run. The TrackMate 9 path is
 * tested with TrackMate 9 on the class path (the {@code java/tm9} test module).
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
     * interface (TrackMate 9 made it one; TrackMate 8's is a class). {@code lookup} returns null for a class it cannot
     * find; nothing is initialised.
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
        double[] xs = o.polygonX();
        double[] ys = o.polygonY();
        boolean outline = xs != null && ys != null && xs.length >= 3 && xs.length == ys.length;
        if (outline) { // TrackMate's ROIs are relative to the spot's centre
            for (int i = 0; i < xs.length; i++) {
                xs[i] -= o.x();
                ys[i] -= o.y();
            }
        }
        if (api == ShapeApi.TM9_MESHES) {
            TrackMate9 tm9 = TrackMate9.of(SpotMaker.class.getClassLoader());
            return (Spot) (outline ? tm9.roiSpot(o.x(), o.y(), o.radius(), o.quality(), xs, ys)
                    : tm9.sphereSpot(o.x(), o.y(), 0, o.radius(), o.quality()));
        }
        return TrackMate8.spot(o.x(), o.y(), 0, o.radius(), o.quality(), outline ? xs : null, outline ? ys : null);
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
        return TrackMate8.spot(x, y, z, radius, quality, null, null);
    }

    /**
     * TrackMate 8's spot constructors, called directly. This class is the only code of the plugin that TrackMate 9
     * cannot link ({@code new Spot(...)} on what is an interface there), and it is only loaded on TrackMate 8.
     */
    static final class TrackMate8 {

        private TrackMate8() {
        }

        /** A spot; with an outline (relative to the spot's centre) when {@code xs} and {@code ys} are given. */
        static Spot spot(double x, double y, double z, double radius, double quality, double[] xs, double[] ys) {
            Spot spot = new Spot(x, y, z, radius, quality);
            if (xs != null && ys != null) {
                spot.setRoi(new SpotRoi(xs, ys));
            }
            return spot;
        }
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
        private final Constructor<?> spotRoi;

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
            // SpotRoi(xc, yc, zc, radius, quality, name, x[], y[]): the outline relative to the centre
            spotRoi = Class.forName("fiji.plugin.trackmate.SpotRoi", true, loader).getConstructor(double.class,
                    double.class, double.class, double.class, double.class, String.class, double[].class,
                    double[].class);
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
                throw new IllegalStateException("TrackMate 9's spot API (SpotMesh, SpotBase, SpotRoi, imglib2-mesh) "
                        + "is not usable in this Fiji: " + e, e);
            }
            cached = t;
            return t;
        }

        /**
         * A {@code SpotMesh} from the bridge's mesh; {@code zOffset} (physical Z of the first plane sent) is added
         * to every vertex. SpotMesh puts the spot at the centre of the mesh and sets the radius from its volume.
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

        /**
         * A 2D spot with its outline ({@code SpotRoi}); {@code xs}, {@code ys} are relative to the centre (x, y), as
         * TrackMate 9 keeps them.
         */
        Object roiSpot(double x, double y, double radius, double quality, double[] xs, double[] ys) {
            try {
                return spotRoi.newInstance(x, y, 0.0, radius, quality, null, xs, ys);
            } catch (InvocationTargetException e) {
                throw new IllegalStateException("TrackMate 9 refused an outline spot: " + e.getCause(), e.getCause());
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException("TrackMate 9's spot API changed: " + e, e);
            }
        }
    }
}
