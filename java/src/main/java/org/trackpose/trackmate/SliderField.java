package org.trackpose.trackmate;

import java.awt.BorderLayout;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.util.Locale;
import javax.swing.JFormattedTextField;
import javax.swing.JPanel;
import javax.swing.JSlider;

/** A bounded number as a slider and a text field kept in step (two decimals on the slider; any value in range typed). */
final class SliderField extends JPanel {

    private static final long serialVersionUID = 1L;
    private static final int STEPS_PER_UNIT = 100;

    final JSlider slider;
    final JFormattedTextField field;
    private final double min;
    private final double max;
    private boolean updating;

    SliderField(double min, double max, double value) {
        super(new BorderLayout(4, 0));
        this.min = min;
        this.max = max;
        slider = new JSlider((int) Math.round(min * STEPS_PER_UNIT), (int) Math.round(max * STEPS_PER_UNIT));
        field = new JFormattedTextField(new DecimalFormat("0.0##", DecimalFormatSymbols.getInstance(Locale.ROOT)));
        field.setColumns(5);
        field.setHorizontalAlignment(JFormattedTextField.RIGHT);
        add(slider, BorderLayout.CENTER);
        add(field, BorderLayout.EAST);
        slider.addChangeListener(e -> {
            if (!updating) {
                updating = true;
                field.setValue(slider.getValue() / (double) STEPS_PER_UNIT);
                updating = false;
            }
        });
        field.addPropertyChangeListener("value", e -> {
            if (!updating && field.getValue() instanceof Number) {
                updating = true;
                slider.setValue((int) Math.round(clamp(((Number) field.getValue()).doubleValue()) * STEPS_PER_UNIT));
                updating = false;
            }
        });
        setValue(value);
    }

    double getValue() {
        Object v = field.getValue();
        return v instanceof Number ? ((Number) v).doubleValue() : slider.getValue() / (double) STEPS_PER_UNIT;
    }

    void setValue(double value) {
        updating = true;
        field.setValue(value);
        slider.setValue((int) Math.round(clamp(value) * STEPS_PER_UNIT));
        updating = false;
    }

    private double clamp(double v) {
        return Math.max(min, Math.min(max, v));
    }

    /** The tip shows over the slider and the text field, which cover the whole panel. */
    @Override
    public void setToolTipText(String text) {
        super.setToolTipText(text);
        slider.setToolTipText(text);
        field.setToolTipText(text);
    }

    @Override
    public void setEnabled(boolean enabled) {
        super.setEnabled(enabled);
        slider.setEnabled(enabled);
        field.setEnabled(enabled);
    }
}
