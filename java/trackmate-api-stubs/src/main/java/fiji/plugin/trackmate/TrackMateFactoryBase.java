package fiji.plugin.trackmate;

import java.util.Map;
import org.jdom2.Element;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/TrackMateFactoryBase.java): signatures only. The real defaults
 * (reflection-based marshalling, copy) are not reproduced; the trackpose factory overrides every one of them.
 */
public interface TrackMateFactoryBase<F extends TrackMateFactoryBase<F>> extends TrackMateModule {

    default String marshal(final Map<String, Object> settings, final Element element) {
        throw new UnsupportedOperationException("API stub");
    }

    default String unmarshal(final Element element, final Map<String, Object> settings) {
        throw new UnsupportedOperationException("API stub");
    }

    Map<String, Object> getDefaultSettings();

    default String checkSettings(final Map<String, Object> settings) {
        throw new UnsupportedOperationException("API stub");
    }

    default F copy() {
        throw new UnsupportedOperationException("API stub");
    }
}
