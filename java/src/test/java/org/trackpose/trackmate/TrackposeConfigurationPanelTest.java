package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import java.awt.Color;
import java.awt.Component;
import java.awt.Container;
import java.awt.Dimension;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Map;
import javax.imageio.ImageIO;
import javax.swing.SwingUtilities;
import net.imglib2.type.numeric.real.FloatType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.trackpose.bridge.DetectorKeys;

/**
 * The configuration panel, built headless: it shows the settings it is given and gives back what its widgets show,
 * with 3D widgets only for Z stacks. It also renders itself to target/trackmate-panel-{2d,3d}.png (the pictures in
 * docs/ are copies).
 */
class TrackposeConfigurationPanelTest {

    private final TrackposeDetectorFactory<FloatType> factory = new TrackposeDetectorFactory<>();

    @TempDir
    Path tmp;

    @BeforeAll
    static void smoothText() {
        System.setProperty("awt.useSystemAAFontSettings", "on");
        System.setProperty("swing.aatext", "true");
    }

    private TrackposeConfigurationPanel panel(int channels, int slices) {
        return new TrackposeConfigurationPanel(new Settings(TestImages.blank(64, 48, channels, slices, 2, 0.5, 2.0)),
                new Model(), factory);
    }

    @Test
    void twoDPanelGivesBackWhatItWasGiven() {
        TrackposeConfigurationPanel p = panel(1, 1);
        Map<String, Object> defaults = DetectorKeys.defaults();
        p.setSettings(defaults);
        assertEquals(defaults, p.getSettings());
        assertNull(factory.checkSettings(p.getSettings()));
        assertFalse(p.modeRow.isVisible(), "no 3D widgets on a 2D image");
        assertFalse(p.anisotropyRow.isVisible());
        assertFalse(p.iouRow.isVisible());
        assertTrue(p.simplifyRow.isVisible());
        assertEquals("Simplify contours", p.simplifyContours.getText());
        assertTrue(p.modelNameRow.isVisible());
        assertFalse(p.modelFileRow.isVisible());
        assertTrue(p.condaEnvRow.isVisible());
        assertFalse(p.envPathRow.isVisible());
    }

    @Test
    void widgetsChangeTheirOwnKeyOnly() throws Exception {
        TrackposeConfigurationPanel p = panel(3, 1);
        Map<String, Object> given = DetectorKeys.defaults();
        given.put(KEY_BATCH_SIZE, 16); // not shown: kept
        given.put(KEY_MAX_SIZE, 5000);
        p.setSettings(given);
        p.flowThreshold.setValue(1.25);
        p.cellProbThreshold.slider.setValue(-250); // the slider drives the field
        p.targetChannel.setValue(3);
        p.secondChannel.setValue(1);
        p.estimateDiameter.doClick();
        p.useGpu.doClick();
        p.bfloat16.doClick();
        p.workers.setValue(4);
        p.niter.setValue(300);
        p.minSize.setValue(-1);
        p.customModel.doClick();
        p.modelFile.setText(" /models/my_model ");
        p.envKind.setSelectedItem(ENV_VENV);
        p.envPath.setText("/home/me/venv");
        Map<String, Object> s = p.getSettings();
        assertEquals(1.25, s.get(KEY_FLOW_THRESHOLD));
        assertEquals(-2.5, s.get(KEY_CELL_PROB_THRESHOLD));
        assertEquals(3, s.get(KEY_TARGET_CHANNEL));
        assertEquals(1, s.get(KEY_OPTIONAL_CHANNEL_2));
        assertEquals(0.0, s.get(KEY_CELL_DIAMETER), "estimate = 0");
        assertFalse(p.diameter.isEnabled());
        assertEquals(false, s.get(KEY_USE_GPU));
        assertEquals(true, s.get(KEY_BFLOAT16));
        assertEquals(4, s.get(KEY_WORKERS));
        assertEquals(300, s.get(KEY_NITER));
        assertEquals(-1, s.get(KEY_MIN_SIZE));
        assertEquals(CUSTOM, s.get(KEY_PRETRAINED_OR_CUSTOM));
        assertEquals("/models/my_model", s.get(KEY_CELLPOSE_MODEL_FILEPATH));
        assertEquals(ENV_VENV, s.get(KEY_PYTHON_ENV_KIND));
        assertEquals("/home/me/venv", s.get(KEY_PYTHON_ENV_PATH));
        assertEquals(16, s.get(KEY_BATCH_SIZE));
        assertEquals(5000, s.get(KEY_MAX_SIZE));
        assertTrue(p.modelFileRow.isVisible());
        assertFalse(p.modelNameRow.isVisible());
        assertFalse(p.condaEnvRow.isVisible());
        assertTrue(p.envPathRow.isVisible());
        for (String key : DetectorKeys.keys()) {
            assertEquals(DetectorKeys.setting(key).type, s.get(key).getClass(), key + " has its declared type");
        }
        // and back: a panel given these settings shows them
        TrackposeConfigurationPanel q = panel(3, 1);
        q.setSettings(s);
        assertEquals(s, q.getSettings());
    }

    @Test
    void zStackPanelShows3DWidgetsWithAnisotropyFromTheCalibration() {
        TrackposeConfigurationPanel p = panel(2, 5);
        p.setSettings(DetectorKeys.defaults());
        assertTrue(p.modeRow.isVisible());
        assertTrue(p.anisotropyRow.isVisible());
        assertTrue(p.simplifyRow.isVisible(), "SIMPLIFY_CONTOURS simplifies the mesh spots in 3D");
        assertEquals("Simplify surfaces", p.simplifyContours.getText());
        p.simplifyContours.doClick();
        assertEquals(false, p.getSettings().get(KEY_SIMPLIFY_CONTOURS));
        p.simplifyContours.doClick();
        assertTrue(p.mode3D.isSelected());
        assertFalse(p.iouRow.isVisible(), "IoU only with 2D + Z");
        assertFalse(p.stitchSplitRow.isVisible() || p.stitchTrimRow.isVisible(), "cut and trim only with 2D + Z");
        assertTrue(p.minMeanCellprobRow.isVisible(), "faint-object removal in 3D mode");
        assertFalse(p.stitchMinMeanCellprobRow.isVisible(), "the stitching one only with 2D + Z");
        assertEquals(2.0, p.minMeanCellprob.getValue());
        p.minMeanCellprob.setValue(0.0);
        assertEquals(0.0, p.getSettings().get(KEY_MIN_MEAN_CELLPROB));
        p.minMeanCellprob.setValue(2.0);
        Map<String, Object> s = p.getSettings();
        assertEquals(true, s.get(KEY_MODE_3D), "a Z stack is segmented as a volume");
        assertEquals(false, s.get(KEY_DO2DZ));
        assertEquals(4.0, s.get(KEY_ANISOTROPY), "pixelDepth 2.0 / pixelWidth 0.5");
        assertNull(factory.checkSettings(s));

        p.mode2DZ.doClick();
        assertTrue(p.iouRow.isVisible());
        assertTrue(p.stitchSplitRow.isVisible() && p.stitchTrimRow.isVisible());
        assertFalse(p.minMeanCellprobRow.isVisible(), "3D mode only");
        assertTrue(p.stitchMinMeanCellprobRow.isVisible(), "faint-object removal after stitching");
        assertEquals(0.1, p.stitchSplit.getValue());
        assertEquals(0.6, p.stitchTrim.getValue());
        assertEquals(1.0, p.stitchMinMeanCellprob.getValue());
        p.iouThreshold.setValue(0.4);
        p.stitchSplit.setValue(0.0);
        p.stitchTrim.setValue(0.5);
        p.stitchMinMeanCellprob.setValue(0.0);
        s = p.getSettings();
        assertEquals(true, s.get(KEY_DO2DZ));
        assertEquals(0.4, s.get(KEY_IOU_THRESHOLD));
        assertEquals(0.0, s.get(KEY_STITCH_SPLIT));
        assertEquals(0.5, s.get(KEY_STITCH_TRIM));
        assertEquals(0.0, s.get(KEY_STITCH_MIN_MEAN_CELLPROB));
        assertEquals(2.0, s.get(KEY_MIN_MEAN_CELLPROB), "3D mode's own setting is kept apart");
        p.setSettings(s);
        assertEquals(0.0, p.stitchSplit.getValue());
        assertEquals(0.5, p.stitchTrim.getValue());
        assertEquals(0.0, p.stitchMinMeanCellprob.getValue());
        assertEquals(2, ((javax.swing.SpinnerNumberModel) p.targetChannel.getModel()).getMaximum());
        assertNull(factory.checkSettings(s));
    }

    @Test
    void badlyTypedSettingsShowDefaultsInsteadOfFailing() {
        TrackposeConfigurationPanel p = panel(1, 1);
        Map<String, Object> s = DetectorKeys.defaults();
        s.put(KEY_FLOW_THRESHOLD, "lots");
        s.put(KEY_TARGET_CHANNEL, 7); // more than the image has
        p.setSettings(s);
        assertEquals(DEFAULT_FLOW_THRESHOLD, p.getSettings().get(KEY_FLOW_THRESHOLD));
        assertEquals(1, p.getSettings().get(KEY_TARGET_CHANNEL));
    }

    @Test
    void theCheckButtonSaysWhatIsWrongWithTheEnvironment() throws Exception {
        TrackposeConfigurationPanel p = panel(1, 1);
        p.envKind.setSelectedItem(ENV_PYTHON);
        p.envPath.setText(tmp.resolve("no-python-here").toString());
        SwingUtilities.invokeAndWait(p.checkEnv::doClick);
        long deadline = System.nanoTime() + 30_000_000_000L;
        String text = "";
        while (System.nanoTime() < deadline) {
            String[] now = new String[1];
            SwingUtilities.invokeAndWait(() -> now[0] = p.envStatus.getText());
            text = now[0];
            if (!text.contains("Checking") && !text.trim().isEmpty()) {
                break;
            }
            Thread.sleep(20);
        }
        assertTrue(text.contains("no-python-here"), text);
        assertNotEquals(new Color(0.05f, 0.5f, 0.05f), p.envStatus.getForeground(), "not shown as OK");
    }

    @Test
    void rendersHeadless() throws Exception {
        for (int slices : new int[] {1, 5}) {
            TrackposeConfigurationPanel p = panel(2, slices);
            p.setSettings(DetectorKeys.defaults());
            Dimension size = p.getPreferredSize();
            p.setSize(Math.max(size.width, 380), size.height);
            layOut(p);
            BufferedImage image = new BufferedImage(p.getWidth(), p.getHeight(), BufferedImage.TYPE_INT_RGB);
            Graphics2D g = image.createGraphics();
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, image.getWidth(), image.getHeight());
            p.printAll(g);
            g.dispose();
            int dark = 0;
            for (int y = 0; y < image.getHeight(); y += 2) {
                for (int x = 0; x < image.getWidth(); x += 2) {
                    if ((image.getRGB(x, y) & 0xff) < 100) {
                        dark++;
                    }
                }
            }
            assertTrue(dark > 500, "the panel drew text and widgets: " + dark + " dark samples");
            Path out = Paths.get("target", "trackmate-panel-" + (slices > 1 ? "3d" : "2d") + ".png");
            Files.createDirectories(out.getParent());
            ImageIO.write(image, "png", out.toFile());
        }
    }

    private static void layOut(Component c) {
        if (c instanceof Container) {
            ((Container) c).doLayout();
            for (Component child : ((Container) c).getComponents()) {
                layOut(child);
            }
        }
    }
}
