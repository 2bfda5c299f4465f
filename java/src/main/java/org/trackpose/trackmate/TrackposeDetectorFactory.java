package org.trackpose.trackmate;

import fiji.plugin.trackmate.Model;
import fiji.plugin.trackmate.Settings;
import fiji.plugin.trackmate.detection.SpotDetectorFactory;
import fiji.plugin.trackmate.detection.SpotGlobalDetector;
import fiji.plugin.trackmate.detection.SpotGlobalDetectorFactory;
import fiji.plugin.trackmate.gui.components.ConfigurationPanel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.imagej.ImgPlus;
import net.imglib2.Interval;
import net.imglib2.type.NativeType;
import net.imglib2.type.numeric.RealType;
import org.jdom2.Attribute;
import org.jdom2.Element;
import org.scijava.Priority;
import org.scijava.plugin.Plugin;
import org.trackpose.bridge.BridgeClient;
import org.trackpose.bridge.BridgeException;
import org.trackpose.bridge.DetectorKeys;
import org.trackpose.bridge.DetectorSettings;
import org.trackpose.bridge.EngineCommand;
import org.trackpose.bridge.PythonEnvironment;
import org.trackpose.bridge.SettingsXml;

/**
 * TrackMate's entry point to trackpose: a global detector (all frames in one engine job) with Cellpose's advanced
 * options, 2D outlines as spot ROIs and 3D objects as mesh spots (TrackMate 9) or spheres (TrackMate 8).
 *
 * <p>Settings keys, defaults, validation and XML (un)marshalling are the bridge core's ({@link DetectorKeys},
 * {@link DetectorSettings}, {@link SettingsXml}); this class only connects them to TrackMate. The engine runs in the
 * Python environment the settings name; {@link #engineCommand} replaces it (tests, embedding).
 */
@Plugin(type = SpotDetectorFactory.class, priority = Priority.LOW)
public class TrackposeDetectorFactory<T extends RealType<T> & NativeType<T>> implements SpotGlobalDetectorFactory<T> {

    /** The key TrackMate stores in its XML files (DETECTOR_NAME). */
    public static final String DETECTOR_KEY = "TRACKPOSE_DETECTOR";

    public static final String NAME = "trackpose (Cellpose advanced)";

    /**
     * The user guide's planned online home (the repository is not published yet). The panel opens the copy shipped
     * in the jar instead ({@link UserGuide}); TrackMate shows this address as the detector's URL.
     */
    public static final String DOC_URL = "https://github.com/trackpose/trackpose/blob/main/docs/trackmate.md";

    public static final String INFO_TEXT = "<html>"
            + "Segments cells or nuclei with <b>trackpose</b>, a Cellpose-compatible engine (Cellpose 3.1 models "
            + "and settings: cyto3, nuclei, cyto2, your own trained files, or trackpose's built-in model), "
            + "running in a Python environment of your choice."
            + "<p>All frames are sent in one job. 2D images give one spot per object with its outline as the "
            + "spot ROI; Z stacks are segmented in 3D (or 2D per plane + Z stitching) and give one spot per "
            + "object: its surface mesh in TrackMate 9, a sphere of the same volume at its centroid in TrackMate 8. "
            + "The spot quality is the "
            + "object's mean cell probability (0 to 1)."
            + "<p>If you use it, please cite Cellpose: Stringer et al., Nature Methods 2021; "
            + "Pachitariu &amp; Stringer, Nature Methods 2022."
            + "</html>";

    private EngineCommand command;
    private boolean persistentWorker;
    private Path tempRoot;
    private Duration timeout;

    public TrackposeDetectorFactory() {
    }

    // ---- how the engine is run (not settings: these are not saved)

    /** Runs the engine with this command instead of the Python environment the settings name; null = settings. */
    public TrackposeDetectorFactory<T> engineCommand(EngineCommand engine) {
        this.command = engine;
        return this;
    }

    /**
     * Sends jobs to a persistent engine worker shared by all factories that ask for it (models stay loaded between
     * jobs: what previews use) instead of a fresh engine process per run.
     */
    public TrackposeDetectorFactory<T> persistentWorker(boolean persistent) {
        this.persistentWorker = persistent;
        return this;
    }

    /** Where job folders are made; null = the system temporary folder. */
    public TrackposeDetectorFactory<T> tempRoot(Path root) {
        this.tempRoot = root;
        return this;
    }

    /** Time limit of one detection; null = none. */
    public TrackposeDetectorFactory<T> timeout(Duration limit) {
        this.timeout = limit;
        return this;
    }

    /** A copy of this factory that runs on the persistent worker: what the configuration panel's preview uses. */
    public TrackposeDetectorFactory<T> forPreview() {
        return copy().persistentWorker(true);
    }

    BridgeClient client(DetectorSettings settings) throws BridgeException {
        EngineCommand engine = command != null ? command : PythonEnvironment.fromSettings(settings);
        BridgeClient client = persistentWorker ? new BridgeClient(EngineWorkers.forCommand(engine))
                : new BridgeClient(engine);
        return client.tempRoot(tempRoot).timeout(timeout);
    }

    // ---- SpotGlobalDetectorFactory

    @Override
    public SpotGlobalDetector<T> getDetector(ImgPlus<T> img, Map<String, Object> settings, Interval interval) {
        return new TrackposeDetector<>(img, interval, settings, this::client);
    }

    @Override
    public ConfigurationPanel getDetectorConfigurationPanel(Settings settings, Model model) {
        return new TrackposeConfigurationPanel(settings, model, this);
    }

    @Override
    public boolean has2Dsegmentation() {
        return true;
    }

    /**
     * TrackMate 9 (where this overrides {@code SpotDetectorFactoryBase.has3Dsegmentation()}; TrackMate 8 has no such
     * method and never calls it): Z stacks give mesh spots, so TrackMate adds its 3D shape analyzers (volume,
     * surface area, sphericity, ellipsoid fit).
     */
    public boolean has3Dsegmentation() {
        return true;
    }

    // ---- TrackMateFactoryBase

    @Override
    public Map<String, Object> getDefaultSettings() {
        return DetectorKeys.defaults();
    }

    /** Every problem with the settings, one per line (naming the key, the value and what is allowed); null if none. */
    @Override
    public String checkSettings(Map<String, Object> settings) {
        return joined(new DetectorSettings(settings).validate());
    }

    /** Writes each setting as an attribute ({@code toString()} of its value). */
    @Override
    public String marshal(Map<String, Object> settings, Element element) {
        Map<String, String> attributes = new LinkedHashMap<>();
        List<String> problems = SettingsXml.marshal(settings, attributes);
        attributes.forEach(element::setAttribute);
        return joined(problems);
    }

    /**
     * Reads the attributes back with the type of each default: absent keys get their default (older files), malformed
     * or unknown ones are reported, and the result is validated (ranges, custom model file).
     */
    @Override
    public String unmarshal(Element element, Map<String, Object> settings) {
        Map<String, String> attributes = new LinkedHashMap<>();
        for (Attribute a : element.getAttributes()) {
            attributes.put(a.getName(), a.getValue());
        }
        List<String> problems = new ArrayList<>(SettingsXml.unmarshal(attributes, settings));
        if (problems.isEmpty()) {
            problems.addAll(new DetectorSettings(settings).validate());
        }
        return joined(problems);
    }

    @Override
    public TrackposeDetectorFactory<T> copy() {
        return new TrackposeDetectorFactory<T>().engineCommand(command).persistentWorker(persistentWorker)
                .tempRoot(tempRoot).timeout(timeout);
    }

    // ---- TrackMateModule

    @Override
    public String getKey() {
        return DETECTOR_KEY;
    }

    @Override
    public String getName() {
        return NAME;
    }

    @Override
    public String getInfoText() {
        return INFO_TEXT;
    }

    @Override
    public String getUrl() {
        return DOC_URL;
    }

    private static String joined(List<String> problems) {
        return problems.isEmpty() ? null : String.join("\n", problems);
    }
}
