package fiji.plugin.trackmate;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.NavigableSet;
import java.util.Set;
import java.util.TreeMap;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/SpotCollection.java): spots per frame. As in TrackMate,
 * {@link #put} stamps each spot with its FRAME and marks it not visible (VISIBILITY = 0) until spot filtering runs.
 */
public class SpotCollection {

    public static final Double ZERO = 0d;
    public static final Double ONE = 1d;
    public static final String VISIBILITY = "VISIBILITY";

    private final TreeMap<Integer, Set<Spot>> content = new TreeMap<>();

    public SpotCollection() {
    }

    public void put(final int frame, final Collection<Spot> spots) {
        Set<Spot> set = new HashSet<>(spots);
        for (Spot s : set) {
            s.putFeature(Spot.FRAME, (double) frame);
            s.putFeature(VISIBILITY, ZERO);
        }
        content.put(frame, set);
    }

    public int getNSpots(final boolean visibleSpotsOnly) {
        int n = 0;
        for (Integer frame : content.keySet()) {
            n += getNSpots(frame, visibleSpotsOnly);
        }
        return n;
    }

    public int getNSpots(final int frame, final boolean visibleSpotsOnly) {
        Set<Spot> spots = content.get(frame);
        if (spots == null) {
            return 0;
        }
        if (!visibleSpotsOnly) {
            return spots.size();
        }
        int n = 0;
        for (Spot s : spots) {
            if (ONE.equals(s.getFeature(VISIBILITY))) {
                n++;
            }
        }
        return n;
    }

    /** The spots of one frame; null for a frame that was never put (all spots when not visible-only). */
    public Iterable<Spot> iterable(final int frame, final boolean visibleSpotsOnly) {
        Set<Spot> spots = content.get(frame);
        if (spots == null || !visibleSpotsOnly) {
            return spots;
        }
        List<Spot> visible = new ArrayList<>();
        for (Spot s : spots) {
            if (ONE.equals(s.getFeature(VISIBILITY))) {
                visible.add(s);
            }
        }
        return visible;
    }

    public Iterable<Spot> iterable(final boolean visibleSpotsOnly) {
        List<Spot> all = new ArrayList<>();
        for (Integer frame : content.keySet()) {
            iterable(frame, visibleSpotsOnly).forEach(all::add);
        }
        return all;
    }

    public NavigableSet<Integer> keySet() {
        return content.navigableKeySet();
    }
}
