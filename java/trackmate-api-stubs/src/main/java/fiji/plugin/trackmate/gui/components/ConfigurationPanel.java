package fiji.plugin.trackmate.gui.components;

import java.util.Map;
import javax.swing.JPanel;

/** API stub (TrackMate 8.1.6, fiji/plugin/trackmate/gui/components/ConfigurationPanel.java): signatures only. */
public abstract class ConfigurationPanel extends JPanel {

    private static final long serialVersionUID = 1L;

    public abstract void setSettings(final Map<String, Object> settings);

    public abstract Map<String, Object> getSettings();

    public abstract void clean();
}
