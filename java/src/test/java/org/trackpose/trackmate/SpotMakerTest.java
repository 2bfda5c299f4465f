package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;

import fiji.plugin.trackmate.Spot;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Function;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Spot making on TrackMate 8 (the real TrackMate 8.1.6 on this class path): spheres for 3D objects, the choice
 * between the two spot APIs, and what the TrackMate 9 path says in a TrackMate 8 Fiji. The TrackMate 9 path itself
 * (mesh, outline and sphere spots made by TrackMate 9's constructors) is tested with TrackMate 9 on the class path:
 * {@code SpotMakerOnTrackMate9Test} in {@code java/tm9}.
 */
class SpotMakerTest {

    @AfterEach
    void backToDetection() {
        SpotMaker.force(null);
    }

    @Test
    void trackMate8GetsASphereEvenWhenTheEngineWroteAMesh() {
        Spot spot = SpotMaker.spot3D(2.5, 2.75, 4.5, 1.25, 0.5, TestImages.boxMesh(0, 0, 0, 1, 1, 1), 3.0,
                SpotMaker.ShapeApi.TM8_SPHERES);
        assertEquals(Spot.class, spot.getClass(), "TrackMate 8's Spot class");
        assertEquals(2.5, spot.getFeature(Spot.POSITION_X), 0);
        assertEquals(2.75, spot.getFeature(Spot.POSITION_Y), 0);
        assertEquals(4.5, spot.getFeature(Spot.POSITION_Z), 0);
        assertEquals(1.25, spot.getFeature(Spot.RADIUS), 0);
        assertEquals(0.5, spot.getFeature(Spot.QUALITY), 0);
        assertNull(spot.getRoi());
    }

    @Test
    void theTrackMate9PathInATrackMate8FijiSaysWhatIsMissing() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> SpotMaker.spot3D(1, 2, 3, 1, 1,
                TestImages.boxMesh(0, 0, 0, 1, 1, 1), 0, SpotMaker.ShapeApi.TM9_MESHES));
        assertTrue(e.getMessage().contains("TrackMate 9's spot API"), e.getMessage());
    }

    /** Stand-ins for a Fiji's classes: any class for the mesh types, an interface or a class for Spot. */
    private static Map<String, Class<?>> trackMate9Classes() {
        Map<String, Class<?>> classes = new HashMap<>();
        for (String name : SpotMaker.TM9_CLASSES) {
            classes.put(name, Object.class);
        }
        classes.put("fiji.plugin.trackmate.Spot", Runnable.class); // an interface, as TrackMate 9's Spot
        return classes;
    }

    private static Function<String, Class<?>> fiji(Map<String, Class<?>> classes) {
        return classes::get;
    }

    @Test
    void theTrackMate9PathIsChosenOnlyWhenItsClassesAreThereAndSpotIsAnInterface() {
        Map<String, Class<?>> tm9 = trackMate9Classes();
        assertEquals(SpotMaker.ShapeApi.TM9_MESHES, SpotMaker.detect(fiji(tm9)));
        for (String missing : SpotMaker.TM9_CLASSES) {
            Map<String, Class<?>> partial = new HashMap<>(tm9);
            partial.remove(missing);
            assertEquals(SpotMaker.ShapeApi.TM8_SPHERES, SpotMaker.detect(fiji(partial)), "without " + missing);
        }
        Map<String, Class<?>> spotIsAClass = new HashMap<>(tm9);
        spotIsAClass.put("fiji.plugin.trackmate.Spot", Spot.class); // TrackMate 8's
        assertEquals(SpotMaker.ShapeApi.TM8_SPHERES, SpotMaker.detect(fiji(spotIsAClass)));
        // this class path holds the real TrackMate 8.1.6: no SpotMesh, Spot is a class
        assertEquals(SpotMaker.ShapeApi.TM8_SPHERES, SpotMaker.api());
        SpotMaker.force(SpotMaker.ShapeApi.TM9_MESHES);
        assertEquals(SpotMaker.ShapeApi.TM9_MESHES, SpotMaker.api());
    }
}
