package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.gui.components.ConfigurationPanel;
import java.util.Map;
import net.imglib2.type.numeric.real.FloatType;
import org.junit.jupiter.api.Test;
import org.trackpose.bridge.DetectorKeys;

/**
 * The configuration panel from the plugin jar, built headless inside TrackMate 9 (with TrackMate 9's detection
 * preview under it): it gives back the settings it is given, with the mesh options (simplify, smoothing) for Z
 * stacks.
 */
class PanelOnTrackMate9Test {

    private final TrackposeDetectorFactory<FloatType> factory = new TrackposeDetectorFactory<>();

    private ConfigurationPanel panel(int slices) {
        return factory.getDetectorConfigurationPanel(new Settings(TestImages.blank(64, 48, 1, slices, 2, 0.5, 1.0)),
                new Model());
    }

    @Test
    void thePanelAndItsPreviewBuildInTrackMate9AndGiveBackTheirSettings() {
        for (int slices : new int[] {1, 6}) {
            TrackposeConfigurationPanel p = assertInstanceOf(TrackposeConfigurationPanel.class, panel(slices));
            assertEquals(2, p.getComponentCount(), "the form and TrackMate 9's preview panel");
            Map<String, Object> given = DetectorKeys.defaults();
            given.put(KEY_MODE_3D, slices > 1);
            given.put(KEY_SIMPLIFY_CONTOURS, false);
            if (slices > 1) {
                given.put(KEY_SMOOTHING, 0.75);
                given.put(KEY_ANISOTROPY, 2.0);
            }
            p.setSettings(given);
            assertEquals(given, p.getSettings());
            assertNull(factory.checkSettings(p.getSettings()));
            assertTrue(p.simplifyRow.isVisible());
            assertEquals(slices > 1 ? "Simplify surfaces" : "Simplify contours", p.simplifyContours.getText());
            p.clean();
        }
    }
}
