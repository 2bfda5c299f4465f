package org.trackpose.trackmate;

import fiji.plugin.trackmate.Logger;
import fiji.plugin.trackmate.SpotCollection;
import fiji.plugin.trackmate.detection.SpotGlobalDetector;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.imagej.ImgPlus;
import net.imglib2.Interval;
import net.imglib2.type.NativeType;
import net.imglib2.type.numeric.RealType;
import org.scijava.Cancelable;
import org.trackpose.bridge.BridgeClient;
import org.trackpose.bridge.BridgeException;
import org.trackpose.bridge.Detections;
import org.trackpose.bridge.DetectorSettings;

/**
 * Detects every requested frame in one engine job: the crop TrackMate's interval selects (ROI bounding box, Z range,
 * frame range, all channels) goes to the engine through the bridge, and the objects come back as spots in the
 * source image's physical coordinates.
 *
 * <p>A failure is never an empty result: {@link #process()} returns false and {@link #getErrorMessage()} says what
 * went wrong (settings, environment, engine error with its stderr, missing outputs, cancel). {@link #cancel} stops
 * the engine and its children and removes the job folder.
 */
public final class TrackposeDetector<T extends RealType<T> & NativeType<T>> implements SpotGlobalDetector<T>,
        Cancelable {

    /** Makes the bridge client for a run (a fresh engine process, or the shared worker). */
    interface ClientFactory {
        BridgeClient client(DetectorSettings settings) throws BridgeException;
    }

    private final ImgPlus<T> img;
    private final Interval interval;
    private final Map<String, Object> settings;
    private final ClientFactory clients;

    private Logger logger = Logger.VOID_LOGGER;
    private SpotCollection result;
    private String errorMessage;
    private long processingTime;
    private volatile BridgeClient running;
    private volatile String cancelReason;

    TrackposeDetector(ImgPlus<T> img, Interval interval, Map<String, Object> settings, ClientFactory clients) {
        this.img = img;
        this.interval = interval;
        this.settings = new LinkedHashMap<>(settings);
        this.clients = clients;
    }

    @Override
    public void setLogger(Logger logger) {
        this.logger = logger == null ? Logger.VOID_LOGGER : logger;
    }

    @Override
    public boolean checkInput() {
        DetectorSettings s = new DetectorSettings(settings);
        List<String> problems = s.validate();
        if (problems.isEmpty()) {
            Object type = ((ImgPlus<?>) img).getType(); // not T: an RGB image arrives as ARGBType despite the bound
            if (!(type instanceof RealType)) {
                errorMessage = "trackpose cannot use " + type.getClass().getSimpleName() + " pixels: make the RGB "
                        + "image a 3-channel composite (Image > Color > Make Composite) and choose the channels";
                return false;
            }
            TrackMateInput.Layout layout;
            try {
                layout = TrackMateInput.layout(img, interval);
            } catch (IllegalArgumentException e) {
                errorMessage = "trackpose cannot use this image: " + e.getMessage();
                return false;
            }
            problems = s.validateFor(layout.nChannels, layout.nSlices());
        }
        if (!problems.isEmpty()) {
            errorMessage = "trackpose detector settings:\n" + String.join("\n", problems);
            return false;
        }
        return true;
    }

    @Override
    public boolean process() {
        long start = System.currentTimeMillis();
        result = null;
        errorMessage = null;
        try {
            if (cancelReason != null) {
                throw new BridgeException(BridgeException.Kind.CANCELLED, "cancelled");
            }
            DetectorSettings s = new DetectorSettings(settings);
            TrackMateInput input = TrackMateInput.of(img, interval);
            TrackMateInput.Layout layout = input.layout();
            logger.log("trackpose: detecting in " + layout + ".\n");
            BridgeClient client = clients.client(s).logger(new TrackMateLogger(logger));
            running = client;
            if (cancelReason != null) { // cancelled while the input was copied
                throw new BridgeException(BridgeException.Kind.CANCELLED, "cancelled");
            }
            Detections found = client.detect(input.jobInput(), s);
            if (cancelReason != null) {
                throw new BridgeException(BridgeException.Kind.CANCELLED, "cancelled");
            }
            result = SpotMaker.spots(found, layout.zOffset() * layout.pixelDepth, logger);
            logger.log("trackpose: " + found.count() + " object" + (found.count() == 1 ? "" : "s") + " in "
                    + found.frames().size() + " frame" + (found.frames().size() == 1 ? "" : "s")
                    + (found.dropped() > 0 ? " (" + found.dropped() + " without an outline left out)" : "")
                    + ".\n");
            return true;
        } catch (BridgeException e) {
            errorMessage = message(e);
            return false;
        } catch (RuntimeException | OutOfMemoryError e) {
            errorMessage = "trackpose detector failed: " + e;
            return false;
        } finally {
            running = null;
            processingTime = System.currentTimeMillis() - start;
        }
    }

    private String message(BridgeException e) {
        switch (e.kind()) {
            case CANCELLED:
                return "trackpose detection cancelled" + (cancelReason == null ? "" : ": " + cancelReason)
                        + "; the engine was stopped and no spots were kept.";
            case ENVIRONMENT:
                return "trackpose cannot run the engine: " + e.getMessage()
                        + "\nCheck the Python environment in the detector's panel (Check button).";
            case TIMEOUT:
                return "trackpose detection timed out: " + e.getMessage();
            default:
                return "trackpose detection failed (" + e.kind().name().toLowerCase(java.util.Locale.ROOT) + "): "
                        + e.getMessage();
        }
    }

    @Override
    public SpotCollection getResult() {
        return result;
    }

    @Override
    public String getErrorMessage() {
        return errorMessage;
    }

    @Override
    public long getProcessingTime() {
        return processingTime;
    }

    // ---- Cancelable

    @Override
    public boolean isCanceled() {
        return cancelReason != null;
    }

    /** Stops the running engine (never blocks); {@link #process()} then returns false. */
    @Override
    public void cancel(String reason) {
        cancelReason = reason == null || reason.isEmpty() ? "cancelled" : reason;
        BridgeClient client = running;
        if (client != null) {
            client.cancel();
        }
    }

    @Override
    public String getCancelReason() {
        return cancelReason;
    }
}
