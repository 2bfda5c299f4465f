package fiji.plugin.trackmate;

/**
 * API stub (TrackMate 9, branch {@code v9} at 9bdb066 of 2025-10-27, fiji/plugin/trackmate/SpotBase.java): in
 * TrackMate 9 {@code Spot} became an interface and {@code SpotBase} is the plain spot (a sphere) implementing it.
 * TrackMate 8 has no such class. Here it extends the TrackMate 8 {@link Spot} class of these stubs so that the
 * TrackMate 9 adapter ({@code org.trackpose.trackmate.MeshSpotFactory}) compiles in the same tree; only that adapter
 * uses it, and only when the running Fiji has TrackMate 9's classes.
 */
public class SpotBase extends Spot {

    public SpotBase(final double x, final double y, final double z, final double radius, final double quality,
            final String name) {
        super(x, y, z, radius, quality, name);
    }

    public SpotBase(final double x, final double y, final double z, final double radius, final double quality) {
        this(x, y, z, radius, quality, null);
    }
}
