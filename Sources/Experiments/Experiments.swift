import MeanField
