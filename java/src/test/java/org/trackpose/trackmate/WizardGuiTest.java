package org.trackpose.trackmate;

import static org.junit.jupiter.api.Assertions.*;
import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.TrackMatePlugIn;
import ij.IJ;
import ij.ImageJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.WindowManager;
import java.awt.Component;
import java.awt.Container;
import java.awt.Frame;
import java.awt.GraphicsEnvironment;
import java.awt.Rectangle;
import java.awt.Robot;
import java.awt.image.BufferedImage;
import java.lang.reflect.Field;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;
import javax.swing.AbstractButton;
import javax.swing.JButton;
import javax.swing.JComboBox;
import javax.swing.JComponent;
import javax.swing.JFrame;
import javax.swing.JLabel;
import javax.swing.JScrollPane;
import javax.swing.JSlider;
import javax.swing.JSpinner;
import javax.swing.JViewport;
import javax.swing.SwingUtilities;
import javax.swing.text.JTextComponent;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.trackpose.bridge.DetectorKeys;
import org.trackpose.trackmate.TestImages.Blob;

/**
 * The detector in TrackMate 8.1.6's real wizard (an X display is needed: Xvfb in CI). Opens the wizard on a
 * synthetic image as a user does (TrackMatePlugIn), picks our detector in TrackMate's list (found through the
 * plugin index), and checks that every input of our panel is whole inside the wizard at its default size (350 px
 * wide): horizontally always, vertically once scrolled to. Presses Preview on a frame of discs (real engine through
 * the persistent worker) and checks "Found N spots." and the spots. Saves screenshots of the 2D and 3D panels to
 * {@code target/gui-screenshots/}, and to {@code docs/images/} with {@code -Dtrackpose.writeDocImages=true}.
 *
 * <p>Runs in its own surefire execution with {@code java.awt.headless=false}. Without a display it fails with a
 * message saying so; {@code -Dtrackpose.gui=skip} skips it knowingly (with a warning).
 */
class WizardGuiTest {

    private static String python;
    private static final List<Frame> opened = new ArrayList<>();
    private static final AtomicReference<Model> lastModel = new AtomicReference<>();

    private static boolean skipped() {
        return "skip".equals(System.getProperty("trackpose.gui"));
    }

    @BeforeEach
    void notSkipped() {
        if (skipped()) {
            System.err.println("\n*** WizardGuiTest SKIPPED (-Dtrackpose.gui=skip): the panel was NOT checked in "
                    + "TrackMate's wizard ***\n");
            Assumptions.abort("GUI test skipped on request (-Dtrackpose.gui=skip)");
        }
    }

    @BeforeAll
    static void display() {
        if (skipped()) {
            return;
        }
        String display = System.getenv("DISPLAY");
        assertTrue(display != null && !display.isEmpty() && !GraphicsEnvironment.isHeadless(),
                "NO DISPLAY: the wizard GUI test needs an X server and java.awt.headless=false (DISPLAY="
                        + display + ", headless=" + GraphicsEnvironment.isHeadless() + "). Run it under Xvfb: "
                        + "'Xvfb :99 -screen 0 1600x1200x24 & export DISPLAY=:99' before mvn "
                        + "(Debian package xvfb), or pass -Dtrackpose.gui=skip to skip it knowingly.");
        python = EngineForTests.python();
        if (IJ.getInstance() == null) {
            new ImageJ(ImageJ.EMBEDDED);
        }
    }

    @AfterEach
    void closeWindows() throws Exception {
        if (skipped()) {
            return;
        }
        ImagePlus imp;
        while ((imp = WindowManager.getCurrentImage()) != null) {
            imp.changes = false;
            imp.close();
        }
        SwingUtilities.invokeAndWait(() -> {
            for (Frame f : opened) {
                f.dispose();
            }
            opened.clear();
            for (java.awt.Window w : java.awt.Window.getWindows()) {
                if (w.isShowing() && !(w instanceof ImageJ)) {
                    w.dispose(); // dialogs left by a failed step
                }
            }
        });
    }

    @AfterAll
    static void stopWorkers() {
        EngineWorkers.closeAll();
    }

    /** TrackMate's plug-in, keeping the model it makes (the preview puts its spots there). */
    static final class KeepModel extends TrackMatePlugIn {
        @Override
        protected Model createModel(ImagePlus imp) {
            Model m = super.createModel(imp);
            lastModel.set(m);
            return m;
        }
    }

    // ---- images

    private static ImagePlus discs(int frames) {
        int w = 128;
        int h = 128;
        Random noise = new Random(21);
        ImageStack stack = new ImageStack(w, h);
        for (int t = 0; t < frames; t++) {
            List<Blob> blobs = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                blobs.add(new Blob(18 + 31 * (i % 4) + t, 22 + 40 * (i / 4), Double.NaN, 8));
            }
            stack.addSlice(TestImages.plane(w, h, blobs, 0, noise));
        }
        ImagePlus imp = new ImagePlus("12 discs", stack);
        imp.setDimensions(1, 1, frames);
        imp.setOpenAsHyperStack(frames > 1);
        imp.getCalibration().pixelWidth = 0.5;
        imp.getCalibration().pixelHeight = 0.5;
        imp.getCalibration().setUnit("micron");
        return imp;
    }

    private static ImagePlus balls() {
        int w = 64;
        int h = 64;
        int nz = 12;
        Random noise = new Random(5);
        ImageStack stack = new ImageStack(w, h);
        List<Blob> blobs = new ArrayList<>();
        blobs.add(new Blob(20, 22, 6, 7));
        blobs.add(new Blob(44, 40, 6, 7));
        int frames = 2; // a single time point with Z slices makes TrackMate ask whether to swap Z and T
        for (int t = 0; t < frames; t++) {
            for (int z = 0; z < nz; z++) {
                stack.addSlice(TestImages.plane(w, h, blobs, z, noise));
            }
        }
        ImagePlus imp = new ImagePlus("balls", stack);
        imp.setDimensions(1, nz, frames);
        imp.setOpenAsHyperStack(true);
        imp.getCalibration().pixelWidth = 0.5;
        imp.getCalibration().pixelHeight = 0.5;
        imp.getCalibration().pixelDepth = 1.0;
        imp.getCalibration().setUnit("micron");
        return imp;
    }

    // ---- Swing helpers

    private static <T> T onEdt(Callable<T> c) throws Exception {
        AtomicReference<T> out = new AtomicReference<>();
        AtomicReference<Exception> err = new AtomicReference<>();
        SwingUtilities.invokeAndWait(() -> {
            try {
                out.set(c.call());
            } catch (Exception e) {
                err.set(e);
            }
        });
        if (err.get() != null) {
            throw err.get();
        }
        return out.get();
    }

    private static <T> T waitFor(String what, long millis, Callable<T> c) throws Exception {
        long end = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < end) {
            T t = onEdt(c);
            if (t != null) {
                return t;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("timed out waiting for " + what);
    }

    private static <T extends Component> List<T> find(Container root, Class<T> type) {
        List<T> out = new ArrayList<>();
        for (Component c : root.getComponents()) {
            if (type.isInstance(c)) {
                out.add(type.cast(c));
            }
            if (c instanceof Container) {
                out.addAll(find((Container) c, type));
            }
        }
        return out;
    }

    private static JButton nextButton(JFrame frame) throws Exception {
        for (Component c : find(frame.getContentPane(), fiji.plugin.trackmate.gui.wizard.WizardPanel.class)) {
            Field f = fiji.plugin.trackmate.gui.wizard.WizardPanel.class.getDeclaredField("btnNext");
            f.setAccessible(true);
            return (JButton) f.get(c);
        }
        throw new AssertionError("no WizardPanel in " + frame.getTitle());
    }

    /** Opens the wizard on {@code imp}, chooses our detector and returns our panel in it. */
    private static TrackposeConfigurationPanel openOurPanel(ImagePlus imp) throws Exception {
        SwingUtilities.invokeAndWait(imp::show);
        waitFor("the image window", 10_000, () -> WindowManager.getCurrentImage() == imp ? imp : null);
        new Thread(() -> new KeepModel().run("")).start();
        JFrame frame = waitFor("TrackMate's wizard", 30_000, () -> {
            for (Frame f : Frame.getFrames()) {
                if (f.isShowing() && f instanceof JFrame && f.getTitle().startsWith("TrackMate on")) {
                    return (JFrame) f;
                }
            }
            return null;
        });
        opened.add(frame);
        JButton next = nextButton(frame);
        // start page (calibration) -> detector choice
        onEdt(() -> {
            next.doClick();
            return null;
        });
        JComboBox<?> chooser = waitFor("the detector list", 20_000, () -> {
            for (JComboBox<?> box : find(frame.getContentPane(), JComboBox.class)) {
                if (box.isShowing()) {
                    for (int i = 0; i < box.getItemCount(); i++) {
                        if (String.valueOf(box.getItemAt(i)).contains(TrackposeDetectorFactory.DETECTOR_KEY)
                                || String.valueOf(box.getItemAt(i)).contains(TrackposeDetectorFactory.NAME)) {
                            return box;
                        }
                    }
                }
            }
            return null;
        });
        onEdt(() -> {
            for (int i = 0; i < chooser.getItemCount(); i++) {
                String item = String.valueOf(chooser.getItemAt(i));
                if (item.contains(TrackposeDetectorFactory.DETECTOR_KEY) || item.contains(TrackposeDetectorFactory.NAME)) {
                    chooser.setSelectedIndex(i);
                }
            }
            next.doClick();
            return null;
        });
        TrackposeConfigurationPanel panel = waitFor("our configuration panel", 20_000, () -> {
            for (TrackposeConfigurationPanel p : find(frame.getContentPane(), TrackposeConfigurationPanel.class)) {
                if (p.isShowing()) {
                    return p;
                }
            }
            return null;
        });
        Thread.sleep(1500); // the wizard's page transition animation
        Map<String, Object> s = DetectorKeys.defaults();
        s.put(KEY_PYTHON_ENV_KIND, ENV_PYTHON);
        s.put(KEY_PYTHON_ENV_PATH, python);
        s.put(KEY_CELL_DIAMETER, 8.0);
        s.put(KEY_USE_GPU, false);
        onEdt(() -> {
            panel.setSettings(s);
            frame.validate();
            return null;
        });
        return panel;
    }

    /** Every input of our form lies whole inside the visible area (after scrolling vertically to it). */
    private static List<String> layoutProblems(TrackposeConfigurationPanel panel) throws Exception {
        return onEdt(() -> {
            List<String> problems = new ArrayList<>();
            JScrollPane scroll = find(panel, JScrollPane.class).get(0);
            JViewport vp = scroll.getViewport();
            JComponent form = (JComponent) vp.getView();
            JFrame frame = (JFrame) SwingUtilities.getWindowAncestor(panel);
            Rectangle vpInFrame = SwingUtilities.convertRectangle(vp.getParent(), vp.getBounds(),
                    frame.getContentPane());
            if (vpInFrame.x < 0 || vpInFrame.x + vpInFrame.width > frame.getContentPane().getWidth()) {
                problems.add("the panel's scroll area " + vpInFrame + " exceeds the wizard's width "
                        + frame.getContentPane().getWidth());
            }
            if (form.getWidth() > vp.getWidth()) {
                problems.add("the form is " + form.getWidth() + " px wide in a " + vp.getWidth() + " px viewport");
            }
            List<JComponent> inputs = new ArrayList<>();
            for (Class<? extends JComponent> type : List.of(JTextComponent.class, JSpinner.class, JComboBox.class,
                    AbstractButton.class, JSlider.class)) {
                for (JComponent c : find(form, type)) {
                    boolean inner = SwingUtilities.getAncestorOfClass(JSpinner.class, c) != null
                            || SwingUtilities.getAncestorOfClass(JComboBox.class, c) != null;
                    if (!inner && c.isShowing()) {
                        inputs.add(c);
                    }
                }
            }
            if (inputs.size() < 15) {
                problems.add("only " + inputs.size() + " inputs showing");
            }
            for (JComponent c : inputs) {
                Rectangle r = SwingUtilities.convertRectangle(c.getParent(), c.getBounds(), form);
                form.scrollRectToVisible(r);
                vp.validate();
                Rectangle seen = SwingUtilities.convertRectangle(c.getParent(), c.getBounds(), vp);
                String name = c.getClass().getSimpleName() + describe(c);
                if (seen.x < 0 || seen.y < 0 || seen.x + seen.width > vp.getWidth()
                        || seen.y + seen.height > vp.getHeight()) {
                    problems.add(name + " at " + seen + " is not whole inside the visible " + vp.getWidth() + " x "
                            + vp.getHeight() + " area");
                }
                java.awt.Dimension pref = c.getPreferredSize();
                boolean mustBeWhole = c instanceof JSpinner || c instanceof JComboBox || c instanceof AbstractButton;
                if (mustBeWhole && (c.getWidth() < pref.width - 1 || c.getHeight() < pref.height - 1)) {
                    problems.add(name + " is " + c.getWidth() + " x " + c.getHeight() + ", needs " + pref.width
                            + " x " + pref.height + " to show its value");
                }
                if (c instanceof JTextComponent && c.getWidth() < 50) {
                    problems.add(name + " is only " + c.getWidth() + " px wide");
                }
            }
            return problems;
        });
    }

    private static String describe(JComponent c) {
        if (c instanceof AbstractButton) {
            return " '" + ((AbstractButton) c).getText() + "'";
        }
        return c.getToolTipText() == null ? "" : " (" + c.getToolTipText() + ")";
    }

    private static void screenshot(TrackposeConfigurationPanel panel, String name) throws Exception {
        screenshot(onEdt(() -> SwingUtilities.getWindowAncestor(panel)), name);
    }

    private static void screenshot(java.awt.Window frame, String name) throws Exception {
        onEdt(() -> {
            frame.toFront();
            frame.repaint();
            return null;
        });
        Thread.sleep(800);
        Rectangle bounds = onEdt(() -> new Rectangle(frame.getLocationOnScreen(), frame.getSize()));
        BufferedImage shot = new Robot().createScreenCapture(bounds);
        List<Path> targets = new ArrayList<>();
        targets.add(Paths.get("target", "gui-screenshots", name));
        if (Boolean.getBoolean("trackpose.writeDocImages")) {
            targets.add(Paths.get(System.getProperty("trackpose.docs.images", "docs/images"), name));
        }
        for (Path p : targets) {
            Files.createDirectories(p.getParent());
            ImageIO.write(shot, "png", p.toFile());
            System.out.println("screenshot: " + p.toAbsolutePath());
        }
    }

    @Test
    void inThe2DWizardEveryInputIsVisibleAndPreviewFindsTheDiscs() throws Exception {
        TrackposeConfigurationPanel panel = openOurPanel(discs(2));
        JFrame frame = onEdt(() -> (JFrame) SwingUtilities.getWindowAncestor(panel));
        int width = onEdt(frame::getWidth);
        assertTrue(width <= 360, "the wizard opened at its default width (350 px), not " + width);
        List<String> problems = layoutProblems(panel);
        assertTrue(problems.isEmpty(), "at the wizard's default size (" + width + " px):\n  "
                + String.join("\n  ", problems));
        // the 3D rows are hidden for a 2D image
        assertFalse(onEdt(panel.mode3D::isShowing));

        JButton preview = onEdt(() -> {
            for (JButton b : find(panel, JButton.class)) {
                if ("Preview".equals(b.getText())) {
                    return b;
                }
            }
            return null;
        });
        assertNotNull(preview, "TrackMate's preview strip is in our panel");
        onEdt(() -> {
            preview.doClick();
            return null;
        });
        Pattern found = Pattern.compile("Found (\\d+) spots");
        String text = waitFor("the preview's \"Found N spots.\"", 240_000, () -> {
            for (JLabel l : find(panel, JLabel.class)) {
                Matcher m = found.matcher(String.valueOf(l.getText()));
                if (m.find()) {
                    return l.getText();
                }
            }
            return null;
        });
        Matcher m = found.matcher(text);
        assertTrue(m.find());
        assertEquals(12, Integer.parseInt(m.group(1)), "the preview found the 12 discs: " + text);
        Model model = lastModel.get();
        assertNotNull(model);
        long until = System.currentTimeMillis() + 20_000;
        int frame0 = 0;
        while (System.currentTimeMillis() < until && (frame0 = onEdt(() -> model.getSpots().getNSpots(0, false)))
                != 12) {
            Thread.sleep(100);
        }
        assertEquals(12, frame0, "the preview's spots are in TrackMate's model (current frame)");
        for (fiji.plugin.trackmate.Spot s : model.getSpots().iterable(0, false)) {
            assertNotNull(s.getRoi(), "2D spots carry their outline");
        }
        onEdt(() -> {
            find(panel, JScrollPane.class).get(0).getViewport().setViewPosition(new java.awt.Point(0, 0));
            return null;
        });
        screenshot(panel, "trackmate-panel-2d.png");
        // the image with the preview's outlines (TrackMate's overlay), magnified for the docs
        ImagePlus shown = WindowManager.getCurrentImage();
        assertNotNull(shown);
        onEdt(() -> {
            for (int i = 0; i < 3; i++) { // 100% -> 150% -> 200% -> 300%
                shown.getCanvas().zoomIn(0, 0);
            }
            return null;
        });
        screenshot(shown.getWindow(), "trackmate-preview-2d.png");
    }

    @Test
    void inThe3DWizardEveryInputIsVisible() throws Exception {
        TrackposeConfigurationPanel panel = openOurPanel(balls());
        assertTrue(onEdt(panel.mode3D::isShowing), "the 3D rows are shown for a Z stack");
        onEdt(() -> {
            panel.mode2DZ.doClick();
            return null;
        });
        List<String> problems = layoutProblems(panel);
        assertTrue(problems.isEmpty(), "3D panel at the wizard's default size:\n  " + String.join("\n  ", problems));
        onEdt(() -> {
            JScrollPane scroll = find(panel, JScrollPane.class).get(0);
            Rectangle r = SwingUtilities.convertRectangle(panel.modeRow.getParent(), panel.modeRow.getBounds(),
                    scroll.getViewport().getView());
            scroll.getViewport().setViewPosition(new java.awt.Point(0, Math.max(0, r.y - 40)));
            return null;
        });
        screenshot(panel, "trackmate-panel-3d.png");
    }
}
