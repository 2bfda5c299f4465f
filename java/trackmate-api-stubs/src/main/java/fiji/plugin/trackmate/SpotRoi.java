package fiji.plugin.trackmate;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/SpotRoi.java): a 2D polygon whose vertices are stored relative
 * to the spot's position, in physical units.
 */
public class SpotRoi {

    /** Vertex x coordinates relative to the spot's POSITION_X. */
    public final double[] x;

    /** Vertex y coordinates relative to the spot's POSITION_Y. */
    public final double[] y;

    public SpotRoi(final double[] x, final double[] y) {
        this.x = x;
        this.y = y;
    }
}
