package org.trackpose.trackmate;

import static org.trackpose.bridge.DetectorKeys.*;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.gui.components.ConfigurationPanel;
import fiji.plugin.trackmate.util.DetectionPreview;
import java.awt.BorderLayout;
import java.awt.Color;
import java.awt.Cursor;
import java.awt.Desktop;
import java.awt.Dimension;
import java.awt.Font;
import java.awt.GraphicsEnvironment;
import java.awt.GridBagConstraints;
import java.awt.GridBagLayout;
import java.awt.Insets;
import java.awt.Rectangle;
import java.awt.event.MouseAdapter;
import java.awt.event.MouseEvent;
import java.net.URI;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.text.ParseException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import javax.swing.BorderFactory;
import javax.swing.ButtonGroup;
import javax.swing.JButton;
import javax.swing.JCheckBox;
import javax.swing.JComboBox;
import javax.swing.JComponent;
import javax.swing.JFileChooser;
import javax.swing.JFormattedTextField;
import javax.swing.JLabel;
import javax.swing.JPanel;
import javax.swing.JRadioButton;
import javax.swing.JScrollPane;
import javax.swing.JSpinner;
import javax.swing.JTextField;
import javax.swing.JViewport;
import javax.swing.Scrollable;
import javax.swing.SwingConstants;
import javax.swing.SpinnerNumberModel;
import javax.swing.SwingWorker;
import org.trackpose.bridge.DetectorKeys;
import org.trackpose.bridge.DetectorSettings;
import org.trackpose.bridge.EnvironmentCheck;
import org.trackpose.bridge.PythonEnvironment;

/**
 * The detector's settings as Swing widgets, one per key of {@link DetectorKeys}, in TrackMate's layout: title and
 * documentation link, model, Python environment (with a Check button), segmentation options, 3D options (Z stacks
 * only), execution, and TrackMate's detection preview at the bottom.
 *
 * <p>Laid out for TrackMate's wizard, which opens 350 px wide: one column, each label above its field (or a check
 * box with its own text), hints in the labels and tooltips, fields and sliders that take the column's width and
 * shrink with it; the form follows the width of its scroll pane, so nothing is cut at the side and the panel still
 * reads well when the window is widened.
 *
 * <p>No logic lives here: keys, defaults and ranges come from the core, {@code MODE_3D} follows the image (a Z
 * stack is always segmented as a volume, in 3D or 2D + Z), validation is the factory's {@code checkSettings}. Keys
 * the panel does not show (batch size, maximum size) keep the values they were given.
 */
public class TrackposeConfigurationPanel extends ConfigurationPanel {

    private static final long serialVersionUID = 1L;
    private static final Color ERROR_COLOR = new Color(0.75f, 0.05f, 0.05f);
    private static final Color OK_COLOR = new Color(0.05f, 0.5f, 0.05f);

    final ImageFacts facts;
    private Map<String, Object> shown = DetectorKeys.defaults();
    private final JPanel form = new WidthTrackingForm();
    private int row;

    // model
    final JRadioButton builtInModel = new JRadioButton("Built-in or Cellpose model");
    final JRadioButton customModel = new JRadioButton("Custom model file");
    final JComboBox<String> modelName = new JComboBox<>(BUILT_IN_MODELS.toArray(new String[0]));
    final JTextField modelFile = new JTextField(10);
    final JComponent modelNameRow;
    final JComponent modelFileRow;

    // python environment
    final JComboBox<String> envKind = new JComboBox<>(new String[] {ENV_CONDA, ENV_VENV, ENV_PYTHON});
    final JTextField condaEnv = new JTextField(10);
    final JTextField envPath = new JTextField(10);
    final JTextField condaExecutable = new JTextField(10);
    final JButton checkEnv = new JButton("Check");
    final JLabel envStatus = new JLabel(" ");
    private final JLabel envPathLabel = new JLabel();
    final JComponent condaEnvRow;
    final JComponent envPathRow;
    final JComponent condaExecutableRow;

    // segmentation
    final JSpinner targetChannel;
    final JSpinner secondChannel;
    final JFormattedTextField diameter = numberField();
    final JCheckBox estimateDiameter = new JCheckBox("estimate");
    final SliderField flowThreshold = slider(KEY_FLOW_THRESHOLD);
    final SliderField cellProbThreshold = slider(KEY_CELL_PROB_THRESHOLD);
    final JCheckBox resample = new JCheckBox("Resample (dynamics at image size)");
    final JSpinner niter = new JSpinner(new SpinnerNumberModel(0, 0, 100000, 50));
    final JSpinner minSize = new JSpinner(new SpinnerNumberModel(15, -1, Integer.MAX_VALUE, 5));
    final JCheckBox simplifyContours = new JCheckBox("Simplify contours");
    final JComponent simplifyRow;

    // 3D
    final JRadioButton mode3D = new JRadioButton("3D");
    final JRadioButton mode2DZ = new JRadioButton("2D + Z stitching");
    final SliderField iouThreshold = slider(KEY_IOU_THRESHOLD);
    final SliderField stitchSplit = slider(KEY_STITCH_SPLIT);
    final SliderField stitchTrim = slider(KEY_STITCH_TRIM);
    final SliderField minMeanCellprob = slider(KEY_MIN_MEAN_CELLPROB);
    final SliderField stitchMinMeanCellprob = slider(KEY_STITCH_MIN_MEAN_CELLPROB);
    final JFormattedTextField anisotropy = numberField();
    final JFormattedTextField flow3DSmooth = numberField();
    final JFormattedTextField smoothing = numberField();
    final JComponent modeRow;
    final JComponent iouRow;
    final JComponent stitchSplitRow;
    final JComponent stitchTrimRow;
    final JComponent minMeanCellprobRow;
    final JComponent stitchMinMeanCellprobRow;
    final JComponent anisotropyRow;

    // execution
    final JCheckBox useGpu = new JCheckBox("Use GPU");
    final JCheckBox bfloat16 = new JCheckBox("Network in bfloat16");
    final JSpinner workers = new JSpinner(new SpinnerNumberModel(1, 1, 256, 1));
    final JCheckBox keepTempFolder = new JCheckBox("Keep temp folder");

    /**
     * @param settings TrackMate's settings (its source image gives channels, Z slices and calibration); may be null
     * @param model    TrackMate's model, for the preview; may be null (no preview then)
     * @param factory  the factory whose preview copy runs the preview
     */
    public TrackposeConfigurationPanel(Settings settings, Model model, TrackposeDetectorFactory<?> factory) {
        super();
        this.facts = ImageFacts.of(settings == null ? null : settings.imp);
        setLayout(new BorderLayout());
        form.setBorder(BorderFactory.createEmptyBorder(5, 5, 5, 5));

        JLabel title = new JLabel(TrackposeDetectorFactory.NAME);
        title.setFont(title.getFont().deriveFont(Font.BOLD, title.getFont().getSize2D() + 3));
        fullRow(title);
        fullRow(docLink());

        section("Model");
        ButtonGroup modelGroup = new ButtonGroup();
        modelGroup.add(builtInModel);
        modelGroup.add(customModel);
        JPanel modelChoice = new JPanel(new java.awt.GridLayout(2, 1));
        modelChoice.add(builtInModel);
        modelChoice.add(customModel);
        fullRow(modelChoice);
        modelName.setEditable(true);
        modelName.setToolTipText("trackpose_default: trackpose's own model; cellpose names are looked up in "
                + "~/.cellpose/models or $CELLPOSE_LOCAL_MODELS_PATH");
        modelNameRow = addRow("Model:", modelName);
        JButton browseModel = new JButton("Browse");
        browseModel.addActionListener(e -> browse(modelFile, JFileChooser.FILES_ONLY));
        modelFileRow = addRow("Model file:", withButton(modelFile, browseModel));
        builtInModel.addActionListener(e -> refreshVisibility());
        customModel.addActionListener(e -> refreshVisibility());

        section("Python environment");
        envKind.setToolTipText("conda: a conda/mamba environment by name; venv: a virtual environment folder; "
                + "python: a python executable");
        addRow("Kind:", envKind);
        condaEnvRow = addRow("Conda environment (name or prefix):", condaEnv);
        JButton browseEnv = new JButton("Browse");
        browseEnv.addActionListener(e -> browse(envPath, ENV_VENV.equals(envKind.getSelectedItem())
                ? JFileChooser.DIRECTORIES_ONLY : JFileChooser.FILES_ONLY));
        envPathRow = addRow(envPathLabel, withButton(envPath, browseEnv));
        condaExecutable.setToolTipText("Leave empty to find conda, mamba or micromamba automatically");
        condaExecutableRow = addRow("Conda executable (empty = find it):", condaExecutable);
        checkEnv.setToolTipText("Runs 'python -m trackpose --version' in this environment");
        checkEnv.addActionListener(e -> checkEnvironment());
        JPanel check = new JPanel(new BorderLayout(6, 0));
        check.add(checkEnv, BorderLayout.WEST);
        check.add(envStatus, BorderLayout.CENTER);
        fullRow(check);
        envKind.addActionListener(e -> refreshVisibility());

        section("Segmentation");
        targetChannel = new JSpinner(new SpinnerNumberModel(0, 0, facts.nChannels, 1));
        secondChannel = new JSpinner(new SpinnerNumberModel(0, 0, facts.nChannels, 1));
        addRow("Channel to segment (0 = gray):", hint(targetChannel, "0 = gray: the image as one gray channel"));
        addRow("Optional second channel (0 = none):", hint(secondChannel, "nuclei channel for cytoplasm models; "
                + "0 = none"));
        JPanel diameterPanel = new JPanel(new java.awt.FlowLayout(java.awt.FlowLayout.LEFT, 4, 0));
        diameterPanel.add(diameter);
        diameterPanel.add(new JLabel(facts.unit));
        diameterPanel.add(estimateDiameter);
        estimateDiameter.setToolTipText("Let the model's size model estimate the diameter of each image");
        estimateDiameter.addActionListener(e -> diameter.setEnabled(!estimateDiameter.isSelected()));
        addRow("Cell diameter:", diameterPanel);
        addRow("Flow threshold:", flowThreshold);
        addRow("Cell probability threshold:", cellProbThreshold);
        resample.setToolTipText("Follow the flows at image size (cellpose's default); off: at network size, faster");
        checkRow(resample);
        addRow("Dynamics iterations (0 = default):", hint(niter, "0 = cellpose's default (200)"));
        String unit = facts.is3D() ? "voxels" : "pixels";
        addRow("Remove objects below (" + unit + "):", hint(minSize, "-1 keeps every object"));
        JComponent simplify = null;
        if (!facts.is3D()) {
            simplifyContours.setToolTipText("Smooth sub-pixel outlines with few vertices that measure like the "
                    + "object; off: the exact pixel boundary");
            simplify = checkRow(simplifyContours);
        }

        section("3D (Z stack)");
        int sectionStart = row;
        ButtonGroup modeGroup = new ButtonGroup();
        modeGroup.add(mode3D);
        modeGroup.add(mode2DZ);
        JPanel modeChoice = new JPanel(new java.awt.GridLayout(1, 2));
        modeChoice.add(mode3D);
        modeChoice.add(mode2DZ);
        modeRow = addRow("Mode:", modeChoice);
        mode3D.addActionListener(e -> refreshVisibility());
        mode2DZ.addActionListener(e -> refreshVisibility());
        iouRow = addRow("IoU threshold:", iouThreshold);
        stitchSplit.setToolTipText("Cut a stitched object where its brightness along Z dips this fraction below the "
                + "planes on both sides (nuclei stacked in Z); 0 = never, cellpose's stitching");
        stitchSplitRow = addRow("Cut at Z dips deeper than:", stitchSplit);
        stitchTrim.setToolTipText("Drop an object's top and bottom planes dimmer than this fraction of its brightest "
                + "plane (out-of-focus light); 0 = never, cellpose's stitching");
        stitchTrimRow = addRow("Trim end planes dimmer than:", stitchTrim);
        minMeanCellprob.setToolTipText("Remove objects whose mean cell probability (logit, summed over the three "
                + "views) is below this: faint blobs of haze between crowded nuclei; 0 = keep all, cellpose's 3D mode");
        minMeanCellprobRow = addRow("Remove objects fainter than:", minMeanCellprob);
        // the same check after stitching, on one view's logit (its own scale and default): one row or the other shows
        stitchMinMeanCellprob.setToolTipText("Remove stitched objects whose mean cell probability (logit) is below "
                + "this: faint blobs of haze and out-of-focus light; 0 = keep all, cellpose's stitching");
        stitchMinMeanCellprobRow = addRow("Remove objects fainter than:", stitchMinMeanCellprob);
        anisotropyRow = addRow("Anisotropy, Z / XY (calibration: " + format(facts.anisotropy()) + "):",
                hint(anisotropy, "Z step / pixel width; from the calibration: " + format(facts.anisotropy())));
        addRow("Flow smoothing (pixels):", hint(flow3DSmooth, "Gaussian smoothing of the 3D flows, in pixels"));
        if (facts.is3D()) { // the same key as 2D's "Simplify contours", as in TrackMate 9's label image detector
            simplifyContours.setText("Simplify surfaces");
            simplifyContours.setToolTipText("Mesh spots (TrackMate 9) without the voxel staircase and with half the "
                    + "triangles, that measure like the object; off: the exact voxel surface");
            simplify = checkRow(simplifyContours);
        }
        simplifyRow = simplify;
        addRow("Surface smoothing (" + facts.unit + "):", hint(smoothing, "more smoothing of the mesh spots "
                + "(TrackMate 9), at about this scale in " + facts.unit + "; 0 = none"));
        hideRowsFrom(sectionStart - 1, !facts.is3D());

        section("Execution");
        checkRow(useGpu);
        bfloat16.setToolTipText("Faster on recent CPUs (AVX512-BF16, AMX) and GPUs; off: float32, cellpose's numbers");
        checkRow(bfloat16);
        addRow("Parallel workers:", hint(workers, "engine processes working on frames in parallel"));
        keepTempFolder.setToolTipText("Keep the job folder (input, labels, shapes) after the run, for debugging");
        checkRow(keepTempFolder);

        GridBagConstraints filler = new GridBagConstraints();
        filler.gridy = row++;
        filler.weighty = 1;
        form.add(new JLabel(), filler);

        // the form follows the viewport's width (WidthTrackingForm): no horizontal scrolling, nothing cut
        JScrollPane scroll = new JScrollPane(form, JScrollPane.VERTICAL_SCROLLBAR_ALWAYS,
                JScrollPane.HORIZONTAL_SCROLLBAR_NEVER);
        scroll.setBorder(null);
        scroll.getVerticalScrollBar().setUnitIncrement(16);
        add(scroll, BorderLayout.CENTER);

        if (settings != null && model != null && factory != null) {
            DetectionPreview preview = DetectionPreview.create().model(model).settings(settings)
                    .detectorFactory(factory.forPreview()).detectionSettingsSupplier(this::getSettings)
                    .axisLabel("Quality histogram").get();
            add(preview.getPanel(), BorderLayout.SOUTH);
        }
        setSettings(DetectorKeys.defaults());
    }

    // ------------------------------------------------------------------ ConfigurationPanel

    @Override
    public void setSettings(Map<String, Object> settings) {
        shown = new LinkedHashMap<>(DetectorKeys.defaults());
        shown.putAll(settings);
        boolean custom = CUSTOM.equals(text(KEY_PRETRAINED_OR_CUSTOM));
        customModel.setSelected(custom);
        builtInModel.setSelected(!custom);
        modelName.setSelectedItem(text(KEY_CELLPOSE_MODEL));
        modelFile.setText(text(KEY_CELLPOSE_MODEL_FILEPATH));

        envKind.setSelectedItem(text(KEY_PYTHON_ENV_KIND));
        condaEnv.setText(text(KEY_CONDA_ENV));
        envPath.setText(text(KEY_PYTHON_ENV_PATH));
        condaExecutable.setText(text(KEY_CONDA_EXECUTABLE));
        envStatus.setText(" ");

        targetChannel.setValue(clampChannel(integer(KEY_TARGET_CHANNEL)));
        secondChannel.setValue(clampChannel(integer(KEY_OPTIONAL_CHANNEL_2)));
        double d = number(KEY_CELL_DIAMETER);
        estimateDiameter.setSelected(d == 0);
        diameter.setValue(d == 0 ? DEFAULT_CELL_DIAMETER : d);
        diameter.setEnabled(d != 0);
        flowThreshold.setValue(number(KEY_FLOW_THRESHOLD));
        cellProbThreshold.setValue(number(KEY_CELL_PROB_THRESHOLD));
        resample.setSelected(flag(KEY_RESAMPLE));
        niter.setValue(Math.max(0, integer(KEY_NITER)));
        minSize.setValue(Math.max(-1, integer(KEY_MIN_SIZE)));
        simplifyContours.setSelected(flag(KEY_SIMPLIFY_CONTOURS));

        mode2DZ.setSelected(flag(KEY_DO2DZ));
        mode3D.setSelected(!flag(KEY_DO2DZ));
        iouThreshold.setValue(number(KEY_IOU_THRESHOLD));
        stitchSplit.setValue(number(KEY_STITCH_SPLIT));
        stitchTrim.setValue(number(KEY_STITCH_TRIM));
        minMeanCellprob.setValue(number(KEY_MIN_MEAN_CELLPROB));
        stitchMinMeanCellprob.setValue(number(KEY_STITCH_MIN_MEAN_CELLPROB));
        double a = number(KEY_ANISOTROPY);
        anisotropy.setValue(a > 0 ? a : facts.anisotropy());
        flow3DSmooth.setValue(number(KEY_FLOW_3D_SMOOTH));
        smoothing.setValue(number(KEY_SMOOTHING));

        useGpu.setSelected(flag(KEY_USE_GPU));
        bfloat16.setSelected(flag(KEY_BFLOAT16));
        workers.setValue(Math.max(1, integer(KEY_WORKERS)));
        keepTempFolder.setSelected(flag(KEY_KEEP_TEMP_FOLDER));
        refreshVisibility();
    }

    @Override
    public Map<String, Object> getSettings() {
        Map<String, Object> m = new LinkedHashMap<>(shown);
        m.put(KEY_PRETRAINED_OR_CUSTOM, customModel.isSelected() ? CUSTOM : PRETRAINED);
        Object name = modelName.getEditor().getItem();
        m.put(KEY_CELLPOSE_MODEL, name == null ? "" : name.toString().trim());
        m.put(KEY_CELLPOSE_MODEL_FILEPATH, modelFile.getText().trim());

        m.put(KEY_PYTHON_ENV_KIND, envKind.getSelectedItem());
        m.put(KEY_CONDA_ENV, condaEnv.getText().trim());
        m.put(KEY_PYTHON_ENV_PATH, envPath.getText().trim());
        m.put(KEY_CONDA_EXECUTABLE, condaExecutable.getText().trim());

        m.put(KEY_TARGET_CHANNEL, (Integer) targetChannel.getValue());
        m.put(KEY_OPTIONAL_CHANNEL_2, (Integer) secondChannel.getValue());
        m.put(KEY_CELL_DIAMETER, estimateDiameter.isSelected() ? 0.0 : value(diameter));
        m.put(KEY_FLOW_THRESHOLD, flowThreshold.getValue());
        m.put(KEY_CELL_PROB_THRESHOLD, cellProbThreshold.getValue());
        m.put(KEY_RESAMPLE, resample.isSelected());
        m.put(KEY_NITER, (Integer) niter.getValue());
        m.put(KEY_MIN_SIZE, (Integer) minSize.getValue());
        m.put(KEY_SIMPLIFY_CONTOURS, simplifyContours.isSelected());

        m.put(KEY_MODE_3D, facts.is3D());
        m.put(KEY_DO2DZ, facts.is3D() && mode2DZ.isSelected());
        m.put(KEY_IOU_THRESHOLD, iouThreshold.getValue());
        m.put(KEY_STITCH_SPLIT, stitchSplit.getValue());
        m.put(KEY_STITCH_TRIM, stitchTrim.getValue());
        m.put(KEY_MIN_MEAN_CELLPROB, minMeanCellprob.getValue());
        m.put(KEY_STITCH_MIN_MEAN_CELLPROB, stitchMinMeanCellprob.getValue());
        if (facts.is3D()) {
            m.put(KEY_ANISOTROPY, value(anisotropy));
            m.put(KEY_FLOW_3D_SMOOTH, value(flow3DSmooth));
            m.put(KEY_SMOOTHING, value(smoothing));
        }

        m.put(KEY_USE_GPU, useGpu.isSelected());
        m.put(KEY_BFLOAT16, bfloat16.isSelected());
        m.put(KEY_WORKERS, (Integer) workers.getValue());
        m.put(KEY_KEEP_TEMP_FOLDER, keepTempFolder.isSelected());
        return m;
    }

    /** Stops the preview's engine worker (a detection run starts its own engine). */
    @Override
    public void clean() {
        EngineWorkers.closeAll();
    }

    // ------------------------------------------------------------------ behaviour

    private void refreshVisibility() {
        boolean custom = customModel.isSelected();
        modelNameRow.setVisible(!custom);
        label(modelNameRow).setVisible(!custom);
        modelFileRow.setVisible(custom);
        label(modelFileRow).setVisible(custom);
        boolean conda = ENV_CONDA.equals(envKind.getSelectedItem());
        for (JComponent c : new JComponent[] {condaEnvRow, condaExecutableRow}) {
            c.setVisible(conda);
            label(c).setVisible(conda);
        }
        envPathRow.setVisible(!conda);
        envPathLabel.setVisible(!conda);
        envPathLabel.setText(ENV_VENV.equals(envKind.getSelectedItem()) ? "Venv folder:" : "Python executable:");
        boolean stitch = facts.is3D() && mode2DZ.isSelected();
        for (JComponent c : new JComponent[] {iouRow, stitchSplitRow, stitchTrimRow, stitchMinMeanCellprobRow}) {
            c.setVisible(stitch);
            label(c).setVisible(stitch);
        }
        boolean volume = facts.is3D() && !stitch;
        minMeanCellprobRow.setVisible(volume);
        label(minMeanCellprobRow).setVisible(volume);
        form.revalidate();
        form.repaint();
    }

    private void checkEnvironment() {
        Map<String, Object> current = getSettings();
        envStatus.setForeground(Color.DARK_GRAY);
        envStatus.setText("Checking...");
        checkEnv.setEnabled(false);
        new SwingWorker<EnvironmentCheck, Void>() {
            @Override
            protected EnvironmentCheck doInBackground() {
                return PythonEnvironment.fromSettings(new DetectorSettings(current)).check(Duration.ofSeconds(120));
            }

            @Override
            protected void done() {
                checkEnv.setEnabled(true);
                try {
                    showCheck(get());
                } catch (Exception e) {
                    Throwable cause = e.getCause() == null ? e : e.getCause();
                    envStatus.setForeground(ERROR_COLOR);
                    envStatus.setText(html(String.valueOf(cause.getMessage())));
                }
            }
        }.execute();
    }

    void showCheck(EnvironmentCheck check) {
        envStatus.setForeground(check.ok() ? OK_COLOR : ERROR_COLOR);
        envStatus.setText(html(check.ok() ? "trackpose " + check.version() + " found" : check.message()));
    }

    private void browse(JTextField target, int mode) {
        JFileChooser chooser = new JFileChooser(target.getText().isEmpty() ? null : target.getText());
        chooser.setFileSelectionMode(mode);
        if (chooser.showOpenDialog(this) == JFileChooser.APPROVE_OPTION) {
            target.setText(chooser.getSelectedFile().getAbsolutePath());
        }
    }

    /** "User guide": the copy shipped in the jar (UserGuide); the planned online address only when it is missing. */
    private JComponent docLink() {
        JLabel link = new JLabel("<html><a href=\"guide\">User guide</a></html>");
        link.setToolTipText(UserGuide.text() != null ? "The detector's user guide (shipped with the plugin)"
                : TrackposeDetectorFactory.DOC_URL);
        if (!GraphicsEnvironment.isHeadless()) {
            link.setCursor(Cursor.getPredefinedCursor(Cursor.HAND_CURSOR));
            link.addMouseListener(new MouseAdapter() {
                @Override
                public void mouseClicked(MouseEvent e) {
                    if (UserGuide.show(TrackposeConfigurationPanel.this)) {
                        return;
                    }
                    try {
                        Desktop.getDesktop().browse(new URI(TrackposeDetectorFactory.DOC_URL));
                    } catch (Exception ignored) {
                        // no browser: the address is in the tooltip
                    }
                }
            });
        }
        return link;
    }

    // ------------------------------------------------------------------ layout helpers

    private final Map<JComponent, JComponent> labels = new LinkedHashMap<>();

    private JComponent label(JComponent rowComponent) {
        return labels.get(rowComponent);
    }

    private void section(String name) {
        JLabel l = new JLabel(name);
        l.setFont(l.getFont().deriveFont(Font.BOLD));
        GridBagConstraints c = new GridBagConstraints();
        c.gridx = 0;
        c.gridy = row++;
        c.gridwidth = 2;
        c.anchor = GridBagConstraints.WEST;
        c.insets = new Insets(10, 0, 2, 0);
        form.add(l, c);
    }

    private void fullRow(JComponent component) {
        GridBagConstraints c = new GridBagConstraints();
        c.gridx = 0;
        c.gridy = row++;
        c.gridwidth = 2;
        c.fill = GridBagConstraints.HORIZONTAL;
        c.weightx = 1;
        c.insets = new Insets(2, 0, 2, 0);
        form.add(component, c);
    }

    private JComponent addRow(String label, JComponent component) {
        return addRow(new JLabel(label), component);
    }

    /** A label on its own line, the field below it at the column's width. */
    private JComponent addRow(JComponent label, JComponent component) {
        GridBagConstraints c = new GridBagConstraints();
        c.gridx = 0;
        c.gridy = row++;
        c.gridwidth = 2;
        c.anchor = GridBagConstraints.WEST;
        c.fill = GridBagConstraints.HORIZONTAL;
        c.weightx = 1;
        c.insets = new Insets(4, 0, 0, 0);
        form.add(label, c);
        c = new GridBagConstraints();
        c.gridx = 0;
        c.gridy = row++;
        c.gridwidth = 2;
        c.fill = GridBagConstraints.HORIZONTAL;
        c.weightx = 1;
        c.insets = new Insets(1, 0, 2, 0);
        form.add(component, c);
        labels.put(component, label);
        return component;
    }

    /** A check box that carries its own text, on one line; an empty placeholder stands for its label. */
    private JComponent checkRow(JCheckBox box) {
        GridBagConstraints c = new GridBagConstraints();
        c.gridx = 0;
        c.gridy = row++;
        c.gridwidth = 2;
        c.anchor = GridBagConstraints.WEST;
        c.insets = new Insets(2, 0, 2, 0);
        form.add(box, c);
        labels.put(box, new JLabel());
        return box;
    }

    /** Hides (for 2D images) every component placed from grid row {@code fromRow} up to the current row. */
    private void hideRowsFrom(int fromRow, boolean hide) {
        GridBagLayout layout = (GridBagLayout) form.getLayout();
        for (java.awt.Component c : form.getComponents()) {
            int y = layout.getConstraints(c).gridy;
            if (y >= fromRow && y < row && hide) {
                c.setVisible(false);
            }
        }
    }

    private static JComponent withButton(JComponent field, JButton button) {
        JPanel p = new JPanel(new BorderLayout(4, 0));
        p.add(field, BorderLayout.CENTER);
        p.add(button, BorderLayout.EAST);
        return p;
    }

    /** A narrow field at the left of its line, its hint as the tooltip (the label above says the short form). */
    private static JComponent hint(JComponent field, String hint) {
        field.setToolTipText(hint);
        if (field instanceof JSpinner) {
            ((JSpinner.DefaultEditor) ((JSpinner) field).getEditor()).getTextField().setToolTipText(hint);
        }
        JPanel p = new JPanel(new BorderLayout(6, 0));
        p.add(field, BorderLayout.WEST);
        return p;
    }

    /**
     * The form inside the scroll pane: as wide as the viewport (never wider, so the wizard's 350 px show every
     * field whole), as tall as it needs (scrolls vertically).
     */
    private static final class WidthTrackingForm extends JPanel implements Scrollable {
        private static final long serialVersionUID = 1L;

        WidthTrackingForm() {
            super(new GridBagLayout());
        }

        @Override
        public Dimension getPreferredScrollableViewportSize() {
            return getPreferredSize();
        }

        @Override
        public int getScrollableUnitIncrement(Rectangle visible, int orientation, int direction) {
            return 16;
        }

        @Override
        public int getScrollableBlockIncrement(Rectangle visible, int orientation, int direction) {
            return orientation == SwingConstants.VERTICAL ? visible.height : visible.width;
        }

        @Override
        public boolean getScrollableTracksViewportWidth() {
            return true;
        }

        @Override
        public boolean getScrollableTracksViewportHeight() {
            return getParent() instanceof JViewport && getParent().getHeight() > getPreferredSize().height;
        }
    }

    private static SliderField slider(String key) {
        DetectorKeys.Setting s = DetectorKeys.setting(key);
        return new SliderField(s.min, s.max, ((Number) s.defaultValue).doubleValue());
    }

    private static JFormattedTextField numberField() {
        JFormattedTextField f = new JFormattedTextField(
                new DecimalFormat("0.0###", DecimalFormatSymbols.getInstance(Locale.ROOT)));
        f.setColumns(7);
        f.setHorizontalAlignment(JFormattedTextField.RIGHT);
        return f;
    }

    private static double value(JFormattedTextField f) {
        try {
            f.commitEdit();
        } catch (ParseException e) {
            // keep the last valid value
        }
        Object v = f.getValue();
        return v instanceof Number ? ((Number) v).doubleValue() : 0.0;
    }

    private static String format(double d) {
        return new DecimalFormat("0.###", DecimalFormatSymbols.getInstance(Locale.ROOT)).format(d);
    }

    private static String html(String text) {
        return "<html>" + text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
                + "</html>";
    }

    // ------------------------------------------------------------------ reading the shown map defensively

    private Object typed(String key) {
        Object v = shown.get(key);
        Object def = DetectorKeys.setting(key).defaultValue;
        if (def instanceof Number) {
            return v instanceof Number ? v : def;
        }
        return def.getClass().isInstance(v) ? v : def;
    }

    private String text(String key) {
        return (String) typed(key);
    }

    private double number(String key) {
        return ((Number) typed(key)).doubleValue();
    }

    private int integer(String key) {
        return (int) Math.round(number(key));
    }

    private boolean flag(String key) {
        return (Boolean) typed(key);
    }

    private int clampChannel(int c) {
        return Math.max(0, Math.min(facts.nChannels, c));
    }
}
