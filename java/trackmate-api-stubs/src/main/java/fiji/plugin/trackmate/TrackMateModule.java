package fiji.plugin.trackmate;

import javax.swing.ImageIcon;
import org.scijava.plugin.SciJavaPlugin;

/** API stub (TrackMate 8.1.6, fiji/plugin/trackmate/TrackMateModule.java): signatures only. */
public interface TrackMateModule extends SciJavaPlugin {

    String getInfoText();

    default ImageIcon getIcon() {
        return null;
    }

    String getKey();

    String getName();

    default boolean forbidMultithreading() {
        return false;
    }

    default String getUrl() {
        return null;
    }
}
