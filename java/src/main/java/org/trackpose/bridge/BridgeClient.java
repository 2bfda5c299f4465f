package org.trackpose.bridge;

import ij.ImagePlus;
import java.awt.Rectangle;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * The whole detection round trip: validate the settings against the image, write a job folder, run the engine
 * (a fresh process, or a persistent {@link WorkerClient}), read the results, remove the folder.
 *
 * <pre>
 * BridgeClient client = new BridgeClient(PythonEnvironment.fromSettings(settings)).logger(myLogger);
 * Detections found = client.detect(imp, roiRectangle, new int[] {0, 1, 2}, settings);
 * </pre>
 *
 * Every failure is a {@link BridgeException} with a message for the user; a run that succeeds and finds nothing
 * returns empty frames, which is then a real answer.
 */
public final class BridgeClient {

    private final EngineCommand command;
    private final WorkerClient worker;
    private BridgeLogger logger = BridgeLogger.NONE;
    private Path tempRoot;
    private Duration timeout;
    private volatile JobRunner currentRunner;
    private volatile boolean cancelRequested;

    /** A client that starts a fresh engine process per job. */
    public BridgeClient(EngineCommand command) {
        this.command = command;
        this.worker = null;
    }

    /** A client that sends jobs to a persistent worker (models stay loaded between jobs). */
    public BridgeClient(WorkerClient worker) {
        this.command = null;
        this.worker = worker;
    }

    public BridgeClient logger(BridgeLogger l) {
        this.logger = l == null ? BridgeLogger.NONE : l;
        return this;
    }

    /** Where job folders are made; null = the system temporary folder. */
    public BridgeClient tempRoot(Path root) {
        this.tempRoot = root;
        return this;
    }

    /** Time limit of one job; null = none. */
    public BridgeClient timeout(Duration limit) {
        this.timeout = limit;
        return this;
    }

    /** Crops {@code image} to {@code roi} (null = whole), keeps {@code frames} (0-based; null = all) and detects. */
    public Detections detect(ImagePlus image, Rectangle roi, int[] frames, DetectorSettings settings)
            throws BridgeException {
        JobInput input;
        try {
            input = JobInput.crop(image, roi, frames);
        } catch (IllegalArgumentException e) {
            throw new BridgeException(BridgeException.Kind.INPUT, e.getMessage(), e);
        }
        return detect(input, settings);
    }

    public Detections detect(JobInput input, DetectorSettings settings) throws BridgeException {
        cancelRequested = false;
        List<String> problems = settings.validateFor(input.nChannels(), input.nSlices());
        if (!problems.isEmpty()) {
            throw new BridgeException(BridgeException.Kind.INPUT, String.join("\n", problems));
        }
        try (JobFolder job = JobFolder.create(tempRoot, settings.keepTempFolder())) {
            try {
                job.writeInput(input.image());
                job.writeJob(JobFolder.jobJson(settings, input));
                checkCancelled();
                EngineResult result;
                if (worker != null) {
                    WorkerClient w = worker.timeout(timeout);
                    result = w.run(job, logger);
                } else {
                    JobRunner runner = new JobRunner(command).timeout(timeout);
                    currentRunner = runner;
                    if (cancelRequested) {
                        runner.cancel();
                    }
                    result = runner.run(job, logger);
                }
                checkCancelled();
                Detections detections = ResultsReader.read(job.path(), input, logger);
                int reported = result.objects();
                int read = detections.listed();
                if (reported >= 0 && reported != read) {
                    throw new BridgeException(BridgeException.Kind.OUTPUT, "the engine reported " + reported
                            + " objects but its outputs hold " + read + ": the outputs are partial or inconsistent");
                }
                return detections;
            } finally {
                currentRunner = null;
                if (job.isKept()) {
                    logger.log(BridgeLogger.Level.INFO, "job folder kept: " + job.path());
                }
            }
        }
    }

    private void checkCancelled() throws BridgeException {
        if (cancelRequested) {
            throw new BridgeException(BridgeException.Kind.CANCELLED, "cancelled");
        }
    }

    /** Stops the running detection; {@link #detect} then throws CANCELLED and removes its folder. Never blocks. */
    public void cancel() {
        cancelRequested = true;
        JobRunner r = currentRunner;
        if (r != null) {
            r.cancel();
        }
        if (worker != null) {
            worker.cancel();
        }
    }
}
