"""DualTalk core: model, audio features, face rigs, streaming engine, data, training, metrics.

Pure Python and PyTorch; never imports rclpy, so it trains on a GPU cluster and tests without ROS.
"""
__version__ = "0.1.0"
