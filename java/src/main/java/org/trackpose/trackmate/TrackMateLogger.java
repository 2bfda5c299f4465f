package org.trackpose.trackmate;

import fiji.plugin.trackmate.Logger;
import org.trackpose.bridge.BridgeLogger;

/**
 * The bridge's events in TrackMate's log: engine log lines in the log window, warnings and errors in red, progress
 * in the progress bar and status line. The engine's stderr (DEBUG) stays out of the window; when a run fails its
 * tail is part of the error message.
 */
final class TrackMateLogger implements BridgeLogger {

    private final Logger logger;

    TrackMateLogger(Logger logger) {
        this.logger = logger == null ? Logger.VOID_LOGGER : logger;
    }

    @Override
    public void log(Level level, String message) {
        switch (level) {
            case DEBUG:
                return;
            case INFO:
                logger.log("trackpose: " + message + "\n");
                return;
            case WARNING:
                logger.log("trackpose warning: " + message + "\n", Logger.ERROR_COLOR);
                return;
            default:
                logger.error("trackpose: " + message + "\n");
        }
    }

    @Override
    public void progress(int done, int total, int frame) {
        if (total > 0) {
            logger.setProgress(Math.min(1.0, (double) done / total));
        }
        logger.setStatus("trackpose: " + done + " of " + total + " frame" + (total == 1 ? "" : "s") + " done");
    }
}
