package fiji.plugin.trackmate.util;

import javax.swing.JPanel;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/util/DetectionPreviewPanel.java). In TrackMate it holds the
 * Preview / Cancel / Clear buttons and the quality histogram; the stub is an empty panel (there is no TrackMate
 * to run a preview with outside Fiji).
 */
public class DetectionPreviewPanel extends JPanel {

    private static final long serialVersionUID = 1L;
}
