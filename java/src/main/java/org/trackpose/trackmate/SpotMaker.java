package org.trackpose.trackmate;

import fiji.plugin.trackmate.Spot;
import fiji.plugin.trackmate.SpotCollection;
import fiji.plugin.trackmate.SpotRoi;
import java.util.ArrayList;
import java.util.List;
import org.trackpose.bridge.DetectedObject;
import org.trackpose.bridge.Detections;

/**
 * The engine's objects as TrackMate spots. The bridge has already put every coordinate in the source image's
 * physical units (ROI offset added, calibration applied, TrackMate's pixel-centre convention); this class only
 * translates:
 *
 * <ul>
 * <li>2D: a spot at the object's centroid (from the label image), radius {@code sqrt(area / pi)}, with a
 * {@link SpotRoi} holding the outline (simplified when asked) relative to that centroid;</li>
 * <li>3D (TrackMate 8 has no mesh spots): a spot at the voxel centroid, radius {@code cbrt(3 volume / (4 pi))};</li>
 * <li>quality: the engine's, the object's mean cell probability (0..1), so that TrackMate's quality filter removes
 * the least confident objects.</li>
 * </ul>
 */
final class SpotMaker {

    private SpotMaker() {
    }

    /**
     * @param zOffset physical Z of the first plane sent (TrackMate may crop Z), added to 3D positions
     */
    static SpotCollection spots(Detections detections, double zOffset) {
        SpotCollection spots = new SpotCollection();
        for (int frame : detections.frames()) {
            List<Spot> list = new ArrayList<>();
            for (DetectedObject o : detections.objects(frame)) {
                list.add(spot(o, zOffset));
            }
            spots.put(frame, list);
        }
        return spots;
    }

    static Spot spot(DetectedObject o, double zOffset) {
        if (o.is3D()) {
            return new Spot(o.x(), o.y(), o.z() + zOffset, o.radius(), o.quality());
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
}
