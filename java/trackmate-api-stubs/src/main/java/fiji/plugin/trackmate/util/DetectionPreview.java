package fiji.plugin.trackmate.util;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.detection.SpotDetectorFactoryBase;
import java.util.Map;
import java.util.function.Supplier;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/util/DetectionPreview.java): the builder calls the adapter makes.
 * In TrackMate, the Preview button runs the given factory on the current frame (through a TrackMate instance) and
 * shows the spots and a quality histogram; the stub only hands back an empty panel.
 */
public class DetectionPreview {

    private final DetectionPreviewPanel panel = new DetectionPreviewPanel();

    protected DetectionPreview() {
    }

    public DetectionPreviewPanel getPanel() {
        return panel;
    }

    public static Builder create() {
        return new Builder();
    }

    public static final class Builder {

        public Builder model(final Model model) {
            return this;
        }

        public Builder settings(final Settings settings) {
            return this;
        }

        public Builder detectorFactory(final SpotDetectorFactoryBase<?> detectorFactory) {
            return this;
        }

        public Builder detectionSettingsSupplier(final Supplier<Map<String, Object>> detectionSettingsSupplier) {
            return this;
        }

        public Builder axisLabel(final String axisLabel) {
            return this;
        }

        public DetectionPreview get() {
            return new DetectionPreview();
        }
    }
}
