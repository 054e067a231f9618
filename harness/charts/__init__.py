"""Drawing the charts of a run folder (matplotlib only here, never report code).

``draw.draw_charts(run_dir)`` draws every chart; ``paths`` names each chart's file and
caption without importing matplotlib, so the Markdown report can link charts cheaply.
"""
