echo tool from imports
