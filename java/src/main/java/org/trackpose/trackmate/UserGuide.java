package org.trackpose.trackmate;

import java.awt.Component;
import java.awt.Dimension;
import java.awt.Font;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import javax.swing.JOptionPane;
import javax.swing.JScrollPane;
import javax.swing.JTextArea;

/**
 * The detector's user guide (docs/trackmate.md), shipped inside the plugin jar so that the panel's link works
 * offline and always matches the installed version. {@link TrackposeDetectorFactory#DOC_URL} is the guide's planned
 * online home, used only when the jar has no copy.
 */
final class UserGuide {

    /** Where the build puts docs/trackmate.md in the jar (pom.xml, resources). */
    static final String RESOURCE = "/org/trackpose/trackmate/guide/trackmate.md";

    private UserGuide() {
    }

    /** The guide's Markdown text, or null when the jar has none (a build without resources). */
    static String text() {
        try (InputStream in = UserGuide.class.getResourceAsStream(RESOURCE)) {
            return in == null ? null : new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return null;
        }
    }

    /** Shows the guide in a scrollable dialog; false when there is no shipped copy. */
    static boolean show(Component parent) {
        String text = text();
        if (text == null) {
            return false;
        }
        JTextArea area = new JTextArea(text);
        area.setEditable(false);
        area.setLineWrap(true);
        area.setWrapStyleWord(true);
        area.setFont(new Font(Font.MONOSPACED, Font.PLAIN, area.getFont().getSize()));
        area.setCaretPosition(0);
        JScrollPane scroll = new JScrollPane(area);
        scroll.setPreferredSize(new Dimension(760, 560));
        JOptionPane.showMessageDialog(parent, scroll, "trackpose detector: user guide", JOptionPane.PLAIN_MESSAGE);
        return true;
    }
}
