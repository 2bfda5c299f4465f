package org.trackpose.bridge;

import java.util.ArrayDeque;
import java.util.Deque;

/** The last lines of a stream, bounded in lines and characters (engine stderr can be long). Thread-safe. */
final class TailBuffer {

    private final int maxLines;
    private final int maxChars;
    private final Deque<String> lines = new ArrayDeque<>();
    private int chars;
    private long dropped;

    TailBuffer(int maxLines, int maxChars) {
        this.maxLines = maxLines;
        this.maxChars = maxChars;
    }

    synchronized void add(String line) {
        if (line.length() > maxChars / 4) {
            line = line.substring(0, maxChars / 4) + " [...]";
        }
        lines.addLast(line);
        chars += line.length() + 1;
        while (lines.size() > maxLines || chars > maxChars) {
            chars -= lines.removeFirst().length() + 1;
            dropped++;
        }
    }

    synchronized boolean isEmpty() {
        return lines.isEmpty();
    }

    synchronized void clear() {
        lines.clear();
        chars = 0;
        dropped = 0;
    }

    /** The kept lines joined by newlines, preceded by a note when earlier lines were dropped. */
    synchronized String text() {
        StringBuilder sb = new StringBuilder();
        if (dropped > 0) {
            sb.append("[").append(dropped).append(" earlier lines not kept]\n");
        }
        for (String l : lines) {
            sb.append(l).append('\n');
        }
        return sb.toString();
    }

    /** At most the last {@code n} kept lines. */
    synchronized String lastLines(int n) {
        StringBuilder sb = new StringBuilder();
        int skip = Math.max(0, lines.size() - n);
        int i = 0;
        for (String l : lines) {
            if (i++ >= skip) {
                sb.append(l).append('\n');
            }
        }
        return sb.toString();
    }
}
