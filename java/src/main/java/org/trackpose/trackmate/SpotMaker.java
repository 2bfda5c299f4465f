package org.trackpose.trackmate;

import fiji.plugin.trackmate.Logger;
import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotCollection;
import fiji.plugin.trackmate.SpotRoi;
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
 * <li>3D with TrackMate 9 ({@code SpotMesh} present): a mesh spot made by {@link MeshSpotFactory} from the engine's
 * surface mesh (position: mean of the vertices, radius from the mesh volume, as TrackMate 9 does); an object without
 * a mesh is a sphere as above;</li>
 * <li>quality: the engine's, the object's mean cell probability (0..1), so that TrackMate's quality filter removes
 * the least confident objects.</li>
 * </ul>
 *
 * <p>Which API is used is decided once per JVM by looking the TrackMate 9 classes up (never loading the adapter when
 * they are absent) and logged once per detection run that has 3D objects.
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
            return mesh != null && mesh.nTriangles() > 0 ? MeshSpotFactory.meshSpot(mesh, zOffset, quality)
                    : MeshSpotFactory.sphereSpot(x, y, z, radius, quality);
        }
        return new Spot(x, y, z, radius, quality);
    }
}
