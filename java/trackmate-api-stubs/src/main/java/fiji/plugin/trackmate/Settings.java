package fiji.plugin.trackmate;

import ij.ImagePlus;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/Settings.java): the adapter reads only the source image (for its
 * channels, Z slices and calibration) when it builds its configuration panel.
 */
public class Settings {

    public final ImagePlus imp;

    public Settings() {
        this(null);
    }

    public Settings(final ImagePlus imp) {
        this.imp = imp;
    }
}
