package fiji.plugin.trackmate;

import java.awt.Color;
import java.io.PrintWriter;
import java.io.Writer;

/**
 * API stub (TrackMate 8.1.6, fiji/plugin/trackmate/Logger.java): TrackMate's log sink (log window, status bar,
 * progress bar). Only the members the adapter and its tests use.
 */
public abstract class Logger extends PrintWriter {

    public static final Color NORMAL_COLOR = Color.BLACK;
    public static final Color ERROR_COLOR = new Color(0.8f, 0, 0);
    public static final Color GREEN_COLOR = new Color(0, 0.6f, 0);
    public static final Color BLUE_COLOR = new Color(0, 0, 0.7f);

    public Logger() {
        super(Writer.nullWriter());
    }

    public abstract void log(String message, Color color);

    public abstract void error(String message);

    public void log(final String message) {
        log(message, NORMAL_COLOR);
    }

    public abstract void setProgress(double val);

    public abstract void setStatus(String status);

    public static final Logger VOID_LOGGER = new Logger() {
        @Override
        public void log(final String message, final Color color) {
        }

        @Override
        public void error(final String message) {
        }

        @Override
        public void setProgress(final double val) {
        }

        @Override
        public void setStatus(final String status) {
        }
    };
}
