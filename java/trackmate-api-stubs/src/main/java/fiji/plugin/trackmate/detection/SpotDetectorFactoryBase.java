package fiji.plugin.trackmate.detection;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.TrackMateFactoryBase;
import fiji.plugin.trackmate.gui.components.ConfigurationPanel;
import net.imglib2.type.NativeType;
import net.imglib2.type.numeric.RealType;

/** API stub (TrackMate 8.1.6, fiji/plugin/trackmate/detection/SpotDetectorFactoryBase.java): signatures only. */
public interface SpotDetectorFactoryBase<T extends RealType<T> & NativeType<T>>
        extends TrackMateFactoryBase<SpotDetectorFactoryBase<T>> {

    ConfigurationPanel getDetectorConfigurationPanel(final Settings settings, final Model model);

    default boolean has2Dsegmentation() {
        return false;
    }
}
