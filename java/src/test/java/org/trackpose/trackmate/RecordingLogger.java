package org.trackpose.trackmate;

import fiji.plugin.trackmate.Logger;
import java.awt.Color;
import java.util.ArrayList;
import java.util.List;

/** A TrackMate logger that keeps what it is told (thread-safe). */
final class RecordingLogger extends Logger {

    private final List<String> lines = new ArrayList<>();
    private volatile double progress = -1;

    @Override
    public synchronized void log(String message, Color color) {
        lines.add((color == ERROR_COLOR ? "RED " : "") + message.trim());
    }

    @Override
    public synchronized void error(String message) {
        lines.add("ERROR " + message.trim());
    }

    @Override
    public void setProgress(double val) {
        progress = val;
    }

    @Override
    public synchronized void setStatus(String status) {
        lines.add("STATUS " + status);
    }

    synchronized List<String> lines() {
        return new ArrayList<>(lines);
    }

    double progress() {
        return progress;
    }
}
